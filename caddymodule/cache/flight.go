package cache

import (
	"math"
	"sync"
	"sync/atomic"
)

// recentFills is how many ended fills flights remembers per generation
// (two generations are kept: between recentFills and twice as many).
const recentFills = 1024

// flights tracks fills in progress so that concurrent misses for one key
// make one origin request, and remembers the fills that ended lately so
// that a miss looked up before a fill stored its entry, but joining after
// the fill ended, looks again instead of leading a second fill.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
	// ended counts the fills ended so far; recent and older map a key to
	// the count when its last fill ended.
	ended         atomic.Uint64
	recent, older map[string]uint64
}

// flight is one fill in progress; done closes when it ends.
type flight struct{ done chan struct{} }

// endedFills returns how many fills have ended: a request reads it before
// its lookup, and passes it to joinAfter.
func (f *flights) endedFills() uint64 { return f.ended.Load() }

// join returns the fill in progress for key, or registers a new one and
// reports that the caller leads it and must call leave.
func (f *flights) join(key string) (*flight, bool) {
	c, leader, _ := f.joinAfter(key, math.MaxUint64)
	return c, leader
}

// joinAfter is join for a request whose lookup began when endedFills was
// since: when no fill of key is in progress but one ended after since
// (what it stored may be what the lookup missed), it registers nothing
// and reports filled, and the caller looks again.
func (f *flights) joinAfter(key string, since uint64) (c *flight, leader, filled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false, false
	}
	if n, ok := f.recent[key]; ok && n > since {
		return nil, false, true
	}
	if n, ok := f.older[key]; ok && n > since {
		return nil, false, true
	}
	if f.calls == nil {
		f.calls = make(map[string]*flight)
	}
	c = &flight{done: make(chan struct{})}
	f.calls[key] = c
	return c, true, false
}

// leave ends the fill led by the caller and wakes its waiters.
func (f *flights) leave(key string, c *flight) {
	f.mu.Lock()
	delete(f.calls, key)
	if len(f.recent) >= recentFills || f.recent == nil {
		f.older, f.recent = f.recent, make(map[string]uint64)
	}
	f.recent[key] = f.ended.Add(1)
	f.mu.Unlock()
	close(c.done)
}
