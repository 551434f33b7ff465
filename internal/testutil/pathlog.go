package testutil

import "sync"

// PathLog records the request paths a test server was asked for, in
// order; safe for concurrent use. The zero value is ready.
type PathLog struct {
	mu    sync.Mutex
	paths []string
}

// Record adds path.
func (l *PathLog) Record(path string) {
	l.mu.Lock()
	l.paths = append(l.paths, path)
	l.mu.Unlock()
}

// Paths returns a copy of the paths recorded so far.
func (l *PathLog) Paths() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.paths...)
}
