package tiered

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxPending bounds the purges queued for the retrier; past it they are
// replaced by one purge of every Redis entry under the key prefix.
const maxPending = 10000

// pendingPurges holds the purges whose Redis part has not succeeded yet: in
// flight (between a purge's start and Redis's answer) or queued for the
// retrier (retry.go) after a failure.
//
// Until a purge reaches Redis, Redis may still hold what it names, and a
// read from L2 that returned such an entry would put it back into L1, which
// the purge has already passed: the purged value would be served until it
// expires. So every L2 read checks the set after reading (blocks) and treats
// a named entry as a miss. With nothing pending that is one atomic load.
// Reads that began before a purge started or finished are caught by the
// purge log instead: a purge is recorded there when it starts and again
// when it reaches Redis, and promote re-checks the log after storing.
//
// The queue is bounded by maxPending. Past it, the queued purges are
// replaced by one that drops every entry under the key prefix (and every
// other edge's L1), which blocks every L2 read until it has run.
type pendingPurges struct {
	n atomic.Int64 // purges in the set, in flight or queued: 0 lets blocks skip the lock

	mu       sync.RWMutex
	keys     map[string]int // how many pending purges name each key, tag, prefix
	tags     map[string]int
	prefixes map[string]int
	queue    []*pendingPurge // waiting for the retrier
	all      *pendingPurge   // queued drop of everything, once the bound was passed
	seq      uint64          // last queue sequence number given
}

// pendingPurge is one purge in the set.
type pendingPurge struct {
	blocks purgeMessage // what L2 reads must not return meanwhile; fixed
	do     purgeMessage // what to delete in Redis and publish; owned by whoever runs it
	seq    uint64       // when it was queued
}

// dropAll names every entry.
var dropAll = purgeMessage{HasPrefix: true}

// begin adds a purge that is about to run: L2 reads of what m names are
// misses until finish (or, queued, until the retrier is done with it). It
// must be called before the purge is recorded in the purge log.
func (s *pendingPurges) begin(m, do purgeMessage) *pendingPurge {
	p := &pendingPurge{blocks: m, do: do}
	s.mu.Lock()
	s.index(&p.blocks, 1)
	s.n.Add(1)
	s.mu.Unlock()
	return p
}

// finish removes a purge that reached Redis (record its completion in the
// purge log first).
func (s *pendingPurges) finish(p *pendingPurge) {
	s.mu.Lock()
	s.drop(p)
	s.mu.Unlock()
}

// enqueue hands a purge that failed to the retrier. first reports that
// nothing was queued before (the start of a failure streak); overflowed,
// that the bound was passed and a drop of everything was queued.
func (s *pendingPurges) enqueue(p *pendingPurge) (first, overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = len(s.queue) == 0 && s.all == nil
	if len(s.queue) < maxPending {
		s.seq++
		p.seq = s.seq
		s.queue = append(s.queue, p)
		return first, false
	}
	if s.all == nil {
		s.all = &pendingPurge{blocks: dropAll, do: dropAll}
		s.index(&s.all.blocks, 1)
		s.n.Add(1)
		overflowed = true
	}
	s.drop(p) // the queued drop of everything covers it
	return first, overflowed
}

// next returns the purge the retrier should run, or nil. For a drop of
// everything, cut is the last queue number it covers (nonzero).
func (s *pendingPurges) next() (p *pendingPurge, cut uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all != nil {
		p, s.all = s.all, nil
		return p, s.seq
	}
	if len(s.queue) == 0 {
		return nil, 0
	}
	return s.queue[0], 0
}

// succeeded removes a purge the retrier ran (its completion recorded in the
// purge log first), and with a drop of everything every purge queued before
// it started. It returns how many queued purges it removed.
func (s *pendingPurges) succeeded(p *pendingPurge, cut uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.queued()
	s.queue = slices.DeleteFunc(s.queue, func(q *pendingPurge) bool {
		if q == p || cut > 0 && q.seq <= cut {
			s.drop(q)
			return true
		}
		return false
	})
	if cut > 0 {
		s.drop(p)
		before++ // p was taken off the queue by next
	}
	return before - s.queued()
}

// failed puts back a purge the retrier could not run: at the end of the
// queue, so that one purge Redis keeps refusing does not hold up the rest.
func (s *pendingPurges) failed(p *pendingPurge, cut uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cut > 0 {
		if s.all == nil {
			s.all = p
		} else {
			s.drop(p) // a newer drop of everything is queued
		}
		return
	}
	if i := slices.Index(s.queue, p); i >= 0 {
		s.queue = append(slices.Delete(s.queue, i, i+1), p)
	}
}

// len returns how many purges are queued.
func (s *pendingPurges) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queued()
}

func (s *pendingPurges) queued() int {
	n := len(s.queue)
	if s.all != nil {
		n++
	}
	return n
}

// blocks reports whether a pending purge names key, a tag of entry (in the
// L1 layout) or a prefix of key.
func (s *pendingPurges) blocks(key string, entry []byte) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.keys[key] > 0 {
		return true
	}
	for p := range s.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	if len(s.tags) == 0 || len(entry) < entryHeader {
		return false
	}
	off := entryHeader
	for n := int(binary.LittleEndian.Uint16(entry[8:])); n > 0 && off+2 <= len(entry); n-- {
		l := int(binary.LittleEndian.Uint16(entry[off:]))
		off += 2
		if off+l > len(entry) {
			break
		}
		if s.tags[string(entry[off:off+l])] > 0 {
			return true
		}
		off += l
	}
	return false
}

// drop unindexes p; s.mu is held.
func (s *pendingPurges) drop(p *pendingPurge) {
	s.index(&p.blocks, -1)
	s.n.Add(-1)
}

// index adds d to the counts of what m names; s.mu is held.
func (s *pendingPurges) index(m *purgeMessage, d int) {
	if s.keys == nil {
		s.keys, s.tags, s.prefixes = make(map[string]int), make(map[string]int), make(map[string]int)
	}
	count := func(into map[string]int, k string) {
		if into[k] += d; into[k] <= 0 {
			delete(into, k)
		}
	}
	for _, k := range m.Keys {
		count(s.keys, k)
	}
	for _, t := range m.Tags {
		count(s.tags, t)
	}
	if m.HasPrefix {
		count(s.prefixes, m.Prefix)
	}
}
