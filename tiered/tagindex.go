package tiered

import (
	"encoding/binary"

	"github.com/allegro/bigcache/v3"
)

// The L1 tag index (Cache.tags, tag -> keys) finds the L1 entries a tag
// purge removes. It must name every entry L1 holds under a tag (a missing
// pair is an entry no purge reaches) and should name little else: its size
// must follow what L1 holds, whatever keys clients make the cache store.
//
// Pairs leave the index when bigcache removes an entry (onRemove, on
// eviction, expiry or Delete) and when a purge takes a tag. But bigcache
// calls no callback for an entry it overwrites: storing under a key that is
// already present, or under another key with the same 64-bit hash, drops
// the old entry silently. Every pair of the old entry would stay for good,
// so one URI re-stored with changing tags, or an attacker storing pairs of
// URIs whose hashes collide (FNV-1a, bigcache's default, is not built to
// resist that), grew the index without bound. Two measures keep it bounded:
//
//   - storeL1 deletes whatever the key's hash slot holds before storing, so
//     the old entry leaves through onRemove like any other;
//   - keys are hashed with a seeded hash (KeyHasher: hash/maphash, seeded
//     per cache), so colliding keys cannot be computed from outside.
//
// What stays possible is a leak on a race (a purge deleting an entry between
// its store and its indexing, just before its fill's own re-check deletes it
// again): one pair per such race, removed with its tag by the next purge of
// the tag, and not something a client can repeat at will.

// storeL1 stores an entry in L1, first removing (through onRemove, so that
// its tags leave the index) the entry its hash slot holds, be it an older
// entry under key or one under a colliding key.
func (c *Cache) storeL1(key string, b []byte) error {
	_ = c.l1.Delete(key) // bigcache deletes by hash: a colliding entry goes too
	return c.l1.Set(key, b)
}

// index adds key to the local tag index.
func (c *Cache) index(key string, tags []string) {
	if len(tags) == 0 {
		return
	}
	c.mu.Lock()
	for _, t := range tags {
		keys := c.tags[t]
		if keys == nil {
			keys = make(map[string]struct{})
			c.tags[t] = keys
		}
		keys[key] = struct{}{}
	}
	c.mu.Unlock()
}

// indexEntry adds key to the local tag index under the tags of its entry
// b, read in place: a tag already indexed costs no allocation.
func (c *Cache) indexEntry(key string, b []byte) {
	c.withTags(b, func(t []byte) {
		keys := c.tags[string(t)]
		if keys == nil {
			keys = make(map[string]struct{})
			c.tags[string(t)] = keys
		}
		keys[key] = struct{}{}
	})
}

// onRemove drops an evicted or deleted key from the tag index. bigcache calls
// it with a shard lock held, so it only takes c.mu, which is never held while
// calling into bigcache.
func (c *Cache) onRemove(key string, b []byte, _ bigcache.RemoveReason) {
	c.withTags(b, func(t []byte) {
		if keys := c.tags[string(t)]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(c.tags, string(t))
			}
		}
	})
}

// withTags calls f with each tag of the entry b, read in place, holding
// c.mu; an entry without tags takes no lock.
func (c *Cache) withTags(b []byte, f func(tag []byte)) {
	tr := newTagReader(b)
	if tr.n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ok := tr.next(); ok; t, ok = tr.next() {
		f(t)
	}
}

// tagReader walks the tags of an entry (see entryHeader) in place.
type tagReader struct {
	b      []byte
	off, n int // where the next tag's length is; tags left
}

// newTagReader reads the tags of entry b (none when b is too short).
func newTagReader(b []byte) tagReader {
	if len(b) < entryHeader {
		return tagReader{}
	}
	return tagReader{b: b, off: entryHeader, n: int(binary.LittleEndian.Uint16(b[8:]))}
}

// next returns the next tag, or false after the last one or at a
// truncated one.
func (r *tagReader) next() ([]byte, bool) {
	if r.n == 0 || r.off+2 > len(r.b) {
		return nil, false
	}
	l := int(binary.LittleEndian.Uint16(r.b[r.off:]))
	if r.off+2+l > len(r.b) {
		return nil, false
	}
	t := r.b[r.off+2 : r.off+2+l]
	r.off += 2 + l
	r.n--
	return t, true
}
