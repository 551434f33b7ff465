package authtoken

import (
	"strings"
	"sync"
	"time"
)

// memo remembers verified tokens: what each grants and when. It holds two
// generations of at most half its size each: when the current one fills up
// it becomes the previous one (the one before is dropped), and a token
// found in the previous generation moves back into the current one. So a
// full memo forgets the tokens least recently seen, a few at a time, never
// everything at once, and a lookup is one map read under a read lock.
type memo struct {
	half int

	mu       sync.RWMutex
	cur, old map[string]memoEntry
}

// memoEntry is a verified token's grant.
type memoEntry struct {
	id        Identity
	notBefore time.Time // zero: no nbf
}

// newMemo returns a memo of at most size tokens, or nil (no memo) when size
// is not positive.
func newMemo(size int) *memo {
	if size <= 0 {
		return nil
	}
	half := max(size/2, 1)
	return &memo{half: half, cur: make(map[string]memoEntry), old: map[string]memoEntry{}}
}

// get returns the entry of tok.
func (m *memo) get(tok string) (memoEntry, bool) {
	m.mu.RLock()
	e, ok := m.cur[tok]
	if ok {
		m.mu.RUnlock()
		return e, true
	}
	e, ok = m.old[tok]
	m.mu.RUnlock()
	if ok {
		m.put(tok, e)
	}
	return e, ok
}

// put remembers tok (copied: the caller's string may share memory with a
// whole request header).
func (m *memo) put(tok string, e memoEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cur[tok]; ok {
		return
	}
	if len(m.cur) >= m.half {
		m.old = m.cur
		m.cur = make(map[string]memoEntry, m.half)
	}
	m.cur[strings.Clone(tok)] = e
}

// len returns how many tokens are remembered.
func (m *memo) len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.cur) + len(m.old)
}
