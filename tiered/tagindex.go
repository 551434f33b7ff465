package tiered

import (
	"encoding/binary"
	"slices"

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
//   - storeL1 takes the old entry's tags out of the index: those of an
//     older entry under key it reads first, and an entry under a colliding
//     key it deletes before storing, so that it leaves through onRemove
//     like any other;
//   - keys are hashed with a seeded hash (KeyHasher: hash/maphash, seeded
//     per cache), so colliding keys cannot be computed from outside.
//
// What stays possible is a leak on a race (a purge deleting an entry between
// its store and its indexing, just before its fill's own re-check deletes it
// again, or two stores of one key at once): one pair per such race, removed
// with its tag by the next purge of the tag, and not something a client can
// repeat at will.

// storeL1 stores an entry in L1 and takes the tags of the entry it replaces
// out of the index. An older entry under key is replaced in place (one
// bigcache Set, under the shard's lock): deleting it first left a moment in
// which readers of key found nothing, and a key stored again while popular
// (the Vary record each user's fill of a private URI writes) turned their
// hits into origin requests. Only when key is absent is its hash slot
// cleared first, which removes an entry under a colliding key through
// onRemove; a reader of key had nothing to find then anyway.
func (c *Cache) storeL1(key string, b []byte) error {
	old, err := c.l1.Get(key)
	if err != nil {
		_ = c.l1.Delete(key) // bigcache deletes by hash: a colliding entry goes
		return c.l1.Set(key, b)
	}
	if err := c.l1.Set(key, b); err != nil {
		return err
	}
	c.unindexReplaced(key, entryTags(old), entryTags(b))
	return nil
}

// unindexReplaced drops the pairs of key under the tags of the entry it
// replaced that the new entry does not have.
func (c *Cache) unindexReplaced(key string, oldTags, newTags []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range oldTags {
		if !slices.Contains(newTags, t) {
			c.unindexLocked(t, key)
		}
	}
}

// unindexLocked drops the pair (t, key) from the index. Called with mu
// held.
func (c *Cache) unindexLocked(t, key string) {
	if keys := c.tags[t]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(c.tags, t)
		}
	}
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
