package geocache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Candidate is what the cell-candidate cache holds per user: enough to filter
// and rank by distance without touching the database.
type Candidate struct {
	ID     int64
	Lat    float64
	Lng    float64
	Age    int16
	Gender string
}

// Ranked is a candidate with its distance from the query point.
type Ranked struct {
	Candidate
	DistanceM float64
}

// Loader fetches the active users whose location lies in a geohash cell.
type Loader func(ctx context.Context, cell string) ([]Candidate, error)

// CandidateCacheConfig configures NewCandidateCache.
type CandidateCacheConfig struct {
	Loader       Loader
	MaxEntries   int           // cells kept (LRU); default 4096
	TTL          time.Duration // entry lifetime; default 10s. Bounds staleness across processes.
	MinPrecision uint          // coarsest cell used; default 3
	MaxPrecision uint          // finest cell used (<= the stored cell precision); default 5
	MaxCells     int           // most cells one query may cover; default 32
	Now          func() time.Time
}

type entry struct {
	cell    string
	cands   []Candidate
	expires time.Time
	elem    *list.Element
}

type call struct {
	done  chan struct{}
	cands []Candidate
	err   error
	gen   uint64
}

// CandidateCache caches, per geohash cell, the active users located in it.
// Entries are invalidated when a user moves in or out of a cell (Invalidate /
// Moved) and expire after TTL. It is safe for concurrent use; concurrent
// misses on one cell share one load.
type CandidateCache struct {
	cfg      CandidateCacheConfig
	mu       sync.Mutex
	entries  map[string]*entry
	lru      *list.List
	inflight map[string]*call
	gens     map[string]uint64 // bumped by Invalidate; a load started before is not stored
	hits     uint64
	misses   uint64
}

// ErrRadiusTooLarge means the circle needs cells coarser than MinPrecision;
// callers should fall back to an exact query.
var ErrRadiusTooLarge = errors.New("geocache: radius too large for the candidate cache")

// NewCandidateCache returns a cache; cfg.Loader is required.
func NewCandidateCache(cfg CandidateCacheConfig) (*CandidateCache, error) {
	if cfg.Loader == nil {
		return nil, errors.New("geocache: candidate cache needs a loader")
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 4096
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.MinPrecision == 0 {
		cfg.MinPrecision = 3
	}
	if cfg.MaxPrecision == 0 {
		cfg.MaxPrecision = 5
	}
	if cfg.MaxPrecision < cfg.MinPrecision {
		return nil, fmt.Errorf("geocache: max precision %d below min precision %d", cfg.MaxPrecision, cfg.MinPrecision)
	}
	if cfg.MaxCells <= 0 {
		cfg.MaxCells = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CandidateCache{cfg: cfg, entries: map[string]*entry{}, lru: list.New(),
		inflight: map[string]*call{}, gens: map[string]uint64{}}, nil
}

// Stats returns hit and miss counts.
func (c *CandidateCache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// Get returns the candidates of a cell, loading it on a miss.
func (c *CandidateCache) Get(ctx context.Context, cell string) ([]Candidate, error) {
	c.mu.Lock()
	if e, ok := c.entries[cell]; ok && c.cfg.Now().Before(e.expires) {
		c.lru.MoveToFront(e.elem)
		c.hits++
		c.mu.Unlock()
		return e.cands, nil
	}
	c.misses++
	if cl, ok := c.inflight[cell]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.cands, cl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("geocache: waiting for cell %s: %w", cell, ctx.Err())
		}
	}
	cl := &call{done: make(chan struct{}), gen: c.gens[cell]}
	c.inflight[cell] = cl
	c.mu.Unlock()

	cl.cands, cl.err = c.cfg.Loader(ctx, cell)
	if cl.err != nil {
		cl.err = fmt.Errorf("geocache: load cell %s: %w", cell, cl.err)
	}
	c.mu.Lock()
	delete(c.inflight, cell)
	if cl.err == nil && c.gens[cell] == cl.gen {
		c.storeLocked(cell, cl.cands)
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.cands, cl.err
}

func (c *CandidateCache) storeLocked(cell string, cands []Candidate) {
	if e, ok := c.entries[cell]; ok {
		c.lru.Remove(e.elem)
		delete(c.entries, cell)
	}
	e := &entry{cell: cell, cands: cands, expires: c.cfg.Now().Add(c.cfg.TTL)}
	e.elem = c.lru.PushFront(e)
	c.entries[cell] = e
	for c.lru.Len() > c.cfg.MaxEntries {
		old := c.lru.Back().Value.(*entry)
		c.lru.Remove(old.elem)
		delete(c.entries, old.cell)
	}
}

// Invalidate drops the given cells and every coarser cell containing them
// (their prefixes), down to MinPrecision. A load in flight for one of them is
// not stored.
func (c *CandidateCache) Invalidate(cells ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cell := range cells {
		for p := len(cell); p >= 1 && uint(p) >= c.cfg.MinPrecision; p-- {
			k := cell[:p]
			if uint(p) > c.cfg.MaxPrecision {
				continue
			}
			if e, ok := c.entries[k]; ok {
				c.lru.Remove(e.elem)
				delete(c.entries, k)
			}
			c.gens[k]++
		}
	}
}

// Moved invalidates the cells a user left and entered (either may be "").
func (c *CandidateCache) Moved(oldCell, newCell string) {
	var cells []string
	for _, x := range []string{oldCell, newCell} {
		if x != "" {
			cells = append(cells, x)
		}
	}
	c.Invalidate(cells...)
}

// Precision returns the cell precision the cache uses for a circle, or
// ErrRadiusTooLarge.
func (c *CandidateCache) Precision(lat, lng, radiusM float64) (uint, error) {
	p := PrecisionForRadius(lat, lng, radiusM, c.cfg.MaxCells)
	if p > c.cfg.MaxPrecision {
		p = c.cfg.MaxPrecision
	}
	if p < c.cfg.MinPrecision {
		return 0, ErrRadiusTooLarge
	}
	return p, nil
}

// Near returns every cached candidate within radiusM of (lat, lng) that keep
// accepts, nearest first (ties by id). It loads the covering cells as needed.
func (c *CandidateCache) Near(ctx context.Context, lat, lng, radiusM float64, keep func(Candidate) bool) ([]Ranked, error) {
	p, err := c.Precision(lat, lng, radiusM)
	if err != nil {
		return nil, err
	}
	var out []Ranked
	for _, cell := range CoveringCells(lat, lng, radiusM, p) {
		cands, err := c.Get(ctx, cell)
		if err != nil {
			return nil, err
		}
		for _, cd := range cands {
			if keep != nil && !keep(cd) {
				continue
			}
			d := DistanceM(lat, lng, cd.Lat, cd.Lng)
			if d <= radiusM {
				out = append(out, Ranked{Candidate: cd, DistanceM: d})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DistanceM != out[j].DistanceM {
			return out[i].DistanceM < out[j].DistanceM
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
