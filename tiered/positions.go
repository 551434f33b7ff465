package tiered

import (
	"context"
	"sync"
	"time"
)

// Purge positions. A purge may say where in the origin's write history the
// write that caused it stands (PurgeTagsAt: for Spark a PostgreSQL WAL
// position). Every node remembers, for PositionWindow, the highest such
// position per tag, so that a fill read from a copy of the origin's data
// that had not reached it (a lagging replica) can be told from a fresh one
// (PurgedAt) and fetched again instead of being stored: the purge removed
// the old entry, the fill must not put it back.

// Defaults of the purge positions.
const (
	// DefaultPositionWindow is how long a tag's purge position is kept: a
	// copy lagging longer than this may refill an entry with data older
	// than the purge (alert on the lag well before).
	DefaultPositionWindow = 5 * time.Minute
	// maxPositions bounds the tags with a remembered position; past it
	// they fold into one floor every tag is held to (see record).
	maxPositions = 100_000
)

// purgePositions is the per-tag memory of purge positions.
type purgePositions struct {
	window time.Duration
	max    int // maxPositions; tests lower it

	mu      sync.Mutex
	byTag   map[string]tagPosition
	floor   tagPosition // folded on overflow: applies to every tag
	oldest  time.Time   // no entry in byTag was recorded before this
	dropped time.Time   // when expired entries were last dropped
}

type tagPosition struct {
	pos uint64
	at  time.Time
}

// record notes that tags were purged at pos (0: no position, nothing noted).
func (p *purgePositions) record(pos uint64, tags []string, now time.Time) {
	if pos == 0 || len(tags) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byTag == nil {
		p.byTag = make(map[string]tagPosition)
		p.oldest = now
	}
	if now.Sub(p.dropped) > p.window/4 {
		p.expire(now)
	}
	for _, t := range tags {
		if cur, ok := p.byTag[t]; !ok || pos >= cur.pos {
			p.byTag[t] = tagPosition{pos: pos, at: now}
		}
	}
	if len(p.byTag) > p.max {
		// Too many tags purged within the window: every fill is held to
		// the newest position instead of each tag to its own.
		for _, tp := range p.byTag {
			if tp.pos > p.floor.pos {
				p.floor.pos = tp.pos
			}
		}
		p.floor.at = now
		clear(p.byTag)
		p.oldest = now
	}
}

// expire drops the positions older than the window. Called with mu held.
func (p *purgePositions) expire(now time.Time) {
	p.dropped = now
	if now.Sub(p.oldest) <= p.window {
		return
	}
	oldest := now
	for t, tp := range p.byTag {
		if now.Sub(tp.at) > p.window {
			delete(p.byTag, t)
		} else if tp.at.Before(oldest) {
			oldest = tp.at
		}
	}
	p.oldest = oldest
}

// highest returns the highest position at which one of tags was purged
// within the window; 0 when none was.
func (p *purgePositions) highest(tags []string, now time.Time) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pos uint64
	if p.floor.pos > 0 && now.Sub(p.floor.at) <= p.window {
		pos = p.floor.pos
	}
	for _, t := range tags {
		if tp, ok := p.byTag[t]; ok && tp.pos > pos && now.Sub(tp.at) <= p.window {
			pos = tp.pos
		}
	}
	return pos
}

// PurgeTagsAt is PurgeTags for a write at position pos of the origin's
// history (0: unknown, the same as PurgeTags): every node also remembers,
// for Options.PositionWindow, that tags were purged at pos (see PurgedAt).
func (c *Cache) PurgeTagsAt(ctx context.Context, pos uint64, tags ...string) int {
	return c.purge(ctx, purgeMessage{Tags: tags, At: pos})
}

// PurgedAt returns the highest position (PurgeTagsAt) at which any of tags
// was purged, here or on another node, within Options.PositionWindow; 0
// when none was. A fill whose data was read at an older position than this
// is older than a purge of its own tags: it must not be stored.
func (c *Cache) PurgedAt(tags []string) uint64 {
	return c.positions.highest(tags, c.now())
}
