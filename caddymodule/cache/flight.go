package cache

import "sync"

// flights tracks fills in progress so that concurrent misses for one key
// make one origin request.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

// flight is one fill in progress; done closes when it ends.
type flight struct{ done chan struct{} }

// join returns the fill in progress for key, or registers a new one and
// reports that the caller leads it and must call leave.
func (f *flights) join(key string) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	if f.calls == nil {
		f.calls = make(map[string]*flight)
	}
	c := &flight{done: make(chan struct{})}
	f.calls[key] = c
	return c, true
}

// leave ends the fill led by the caller and wakes its waiters.
func (f *flights) leave(key string, c *flight) {
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
}
