package tiered

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// purgeLogSize is how many recent purge records a fill can be checked
// against; a fill that spans more records than this is not stored. With
// Redis a purge takes two records (below): 2048 keeps the 1024 purges a
// fill could span before.
const purgeLogSize = 2048

// purgeLog remembers recent purges so that a fill stores its entry only if
// no purge since the fill began touched the entry's key or tags. A
// cache-wide counter would also discard fills of unrelated entries, and on a
// busy API (every swipe purges something) that costs hits.
//
// With Redis, a purge is recorded when it starts and again when its Redis
// part is done. The second record is for L2 reads: a read that began after
// a purge started but before it deleted the entry from Redis may return
// the purged value, and promoting that into L1 after the purge cleared L1
// would bring it back. The read takes its generation before reading and
// promote checks the log after storing: the second record, later than the
// generation, makes it drop the copy (see pendingPurges for the reads that
// end while the purge is still under way).
type purgeLog struct {
	seq  atomic.Uint64
	mu   sync.RWMutex
	ring [purgeLogSize]purgeMessage
	all  [purgeLogSize]bool // the purge dropped everything (L1 reset)
}

// record appends a purge and returns its sequence number. It must be called
// before the purge looks for the entries to remove.
func (l *purgeLog) record(m purgeMessage, all bool) {
	l.mu.Lock()
	s := l.seq.Load() + 1
	l.ring[s%purgeLogSize] = m
	l.all[s%purgeLogSize] = all
	l.seq.Store(s)
	l.mu.Unlock()
}

// affects reports whether a purge recorded after since touches key or any
// of tags.
func (l *purgeLog) affects(since uint64, key string, tags []string) bool {
	cur := l.seq.Load()
	if cur == since {
		return false
	}
	if cur-since >= purgeLogSize {
		return true
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	for s := since + 1; s <= cur; s++ {
		i := s % purgeLogSize
		m := &l.ring[i]
		if l.all[i] || slices.Contains(m.Keys, key) || m.HasPrefix && strings.HasPrefix(key, m.Prefix) {
			return true
		}
		for _, t := range m.Tags {
			if slices.Contains(tags, t) {
				return true
			}
		}
	}
	return false
}
