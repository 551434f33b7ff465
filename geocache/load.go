package geocache

import (
	"context"
	"fmt"
	"time"
)

// How cells reach the store. A miss loads the cell's parent (one precision
// coarser) and stores all 32 children, empty ones included, so sparse areas
// cost one query per 32 cells; a cell invalidated alone while its siblings
// are still stored is loaded alone. Concurrent misses share one load.

// base32 is the geohash alphabet: the last characters of a cell's children,
// in cell order.
const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// cellKey is the store key of a cell's entry.
func cellKey(cell string) string { return "geocell:" + cell }

// cellTag is the store tag of a cell. A cell's entry is tagged with every
// prefix of the cell (cellTags), so invalidating a cell purges it and all
// finer cells inside it.
func cellTag(cell string) string { return "geocell<" + cell }

// cellTags returns the tags of a cell's entry: one per prefix of the cell.
func cellTags(cell string) []string {
	tags := make([]string, 0, len(cell))
	for p := 1; p <= len(cell); p++ {
		tags = append(tags, cellTag(cell[:p]))
	}
	return tags
}

// loadedKey marks a cell whose 32 children were stored by one load: a child
// missing while the mark lives was invalidated (or evicted) on its own, and
// is loaded alone rather than with its 31 cached siblings. The mark carries
// the cell's tags, so invalidating the cell or a coarser one drops it.
func loadedKey(cell string) string { return "geoload:" + cell }

// call is one load, shared by the misses that wait for it.
type call struct {
	split   bool // the cell's 32 children were loaded (and stored), not the cell itself
	done    chan struct{}
	cands   []Candidate
	expires time.Time
	err     error
	// upTo, when set, means a split load read only the children before
	// it: upTo and the children after it were not read (whole).
	upTo string
}

// covers reports whether the load read all of cell.
func (cl *call) covers(cell string) bool { return cl.upTo == "" || cell < cl.upTo }

// of returns cell's candidates from the load.
func (cl *call) of(cell string) []Candidate {
	if !cl.split {
		return cl.cands
	}
	return withPrefix(cl.cands, cell)
}

// getEncoded returns a cell's candidates as encodeCell lays them out, and
// when they expire: the stored bytes (checked) or a load's.
func (c *CandidateCache) getEncoded(ctx context.Context, cell string) ([]byte, time.Time, error) {
	if e, ok := c.store.GetEntry(ctx, cellKey(cell)); ok {
		if scanCell(e.Value, nil) == nil {
			c.hits.Add(1)
			return e.Value, e.Expires, nil
		}
	}
	c.misses.Add(1)
	parent := len(cell) > 1
	if parent {
		_, loaded := c.store.GetEntry(ctx, loadedKey(cell[:len(cell)-1]))
		parent = !loaded
	}
	var cl *call
	var err error
	if parent {
		cl, err = c.load(ctx, cell[:len(cell)-1], true)
	}
	if !parent || (err == nil && !cl.covers(cell)) {
		cl, err = c.load(ctx, cell, false)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return encodeCell(cl.of(cell)), cl.expires, nil
}

// load runs one load of key (split: of its 32 children), or waits for the
// one in flight, and stores what it read.
func (c *CandidateCache) load(ctx context.Context, key string, split bool) (*call, error) {
	id := key
	if split {
		id += "/"
	}
	c.mu.Lock()
	if cl, ok := c.inflight[id]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl, cl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("geocache: waiting for cell %s: %w", key, ctx.Err())
		}
	}
	cl := &call{split: split, done: make(chan struct{})}
	c.inflight[id] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
		close(cl.done)
	}()

	gen := c.store.Generation() // an invalidation after this stops the store
	cl.expires = c.now().Add(c.cfg.TTL)
	c.read(ctx, cl, key)
	if cl.err != nil {
		cl.err = fmt.Errorf("geocache: load cell %s: %w", key, cl.err)
		return cl, cl.err
	}
	if split {
		c.storeChildren(ctx, key, cl, gen)
	} else {
		c.storeCell(ctx, key, cl.cands, gen)
	}
	return cl, nil
}

// read runs the loader for cl: a split load through the BoundedLoader when
// there is one, every other load through the Loader.
func (c *CandidateCache) read(ctx context.Context, cl *call, key string) {
	if !cl.split || c.cfg.BoundedLoader == nil {
		cl.cands, cl.err = c.cfg.Loader(ctx, key)
		return
	}
	var complete bool
	cl.cands, complete, cl.err = c.cfg.BoundedLoader(ctx, key, c.cfg.ParentRows)
	if cl.err == nil && !complete {
		cl.upTo = firstUnread(cl.cands, key) // its users in cands are never used
	}
}

// firstUnread returns the first child of parent that a bounded read in cell
// order did not read whole: the child of the last user read, which the
// bound may have cut.
func firstUnread(cands []Candidate, parent string) string {
	if len(cands) == 0 {
		return parent + base32[:1]
	}
	last := cands[len(cands)-1]
	return Cell(last.Lat, last.Lng, uint(len(parent)+1))
}

// storeChildren stores the children of parent that a split load read whole
// (empty ones included) and marks parent as loaded (loadedKey), unless an
// invalidation since gen touched them.
func (c *CandidateCache) storeChildren(ctx context.Context, parent string, cl *call, gen uint64) {
	children := make(map[string][]Candidate, 32)
	for _, cd := range cl.cands {
		k := Cell(cd.Lat, cd.Lng, uint(len(parent)+1))
		children[k] = append(children[k], cd)
	}
	for i := 0; i < len(base32); i++ {
		k := parent + base32[i:i+1]
		if !cl.covers(k) {
			break
		}
		c.storeCell(ctx, k, children[k], gen)
	}
	_, _ = c.store.Set(ctx, loadedKey(parent), []byte{1}, c.cfg.TTL, cellTags(parent), gen)
}

// storeCell writes a cell's candidates unless an invalidation since gen
// touched it. A cell too large for the store is simply not cached.
func (c *CandidateCache) storeCell(ctx context.Context, cell string, cands []Candidate, gen uint64) {
	_, _ = c.store.Set(ctx, cellKey(cell), encodeCell(cands), c.cfg.TTL, cellTags(cell), gen)
}

// withPrefix keeps the candidates located in cell.
func withPrefix(cands []Candidate, cell string) []Candidate {
	var out []Candidate
	for _, cd := range cands {
		if Cell(cd.Lat, cd.Lng, uint(len(cell))) == cell {
			out = append(out, cd)
		}
	}
	return out
}
