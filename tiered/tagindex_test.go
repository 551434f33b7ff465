package tiered

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// indexSize returns how many tags and (tag, key) pairs the L1 tag index holds.
func indexSize(c *Cache) (tags, pairs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, keys := range c.tags {
		pairs += len(keys)
	}
	return len(c.tags), pairs
}

// An entry stored again under other tags (bigcache drops the old one without
// an eviction callback) leaves nothing of its old tags in the index: a key
// re-stored a thousand times with new tags is indexed under its last ones.
func TestOverwriteLeavesNoStaleTagIndex(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	for i := 0; i < 1000; i++ {
		mustSet(t, c, "/k", "v", time.Minute, fmt.Sprintf("v:%d", i), "uri:/k")
	}
	if tags, pairs := indexSize(c); tags != 2 || pairs != 2 {
		t.Fatalf("one entry, two tags: the index holds %d tags and %d pairs", tags, pairs)
	}
	c.mu.Lock()
	_, last := c.tags["v:999"]["/k"]
	c.mu.Unlock()
	if !last {
		t.Fatal("the entry's current tag is not indexed")
	}
	if n := c.PurgeTags(context.Background(), "v:999"); n != 1 || present(c, "/k") {
		t.Fatalf("PurgeTags(current tag) = %d", n)
	}
}

// collidingHasher hashes every key alike, as keys an attacker computed to
// collide under a known hash would.
type collidingHasher struct{}

func (collidingHasher) Sum64(string) uint64 { return 42 }

// Keys whose hashes collide evict each other from L1 (bigcache keeps one
// entry per hash) and must take their tags out of the index as they go: an
// anonymous client storing colliding URIs, each with its own URI tag, must
// not grow the index past what L1 holds.
func TestCollidingKeysLeaveNoStaleTagIndex(t *testing.T) {
	opts := DefaultOptions()
	opts.Capacity, opts.MaxEntrySize = 4<<20, 64<<10
	opts.hasher = collidingHasher{}
	c, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("/u/%d", i)
		mustSet(t, c, k, "v", time.Minute, "uri:"+k)
	}
	if n := c.Stats().Entries; n != 1 {
		t.Fatalf("colliding keys: L1 holds %d entries, want 1", n)
	}
	if tags, pairs := indexSize(c); tags != 1 || pairs != 1 {
		t.Fatalf("one entry in L1, but the index holds %d tags and %d pairs", tags, pairs)
	}
	if !present(c, "/u/999") || c.PurgeTags(context.Background(), "uri:/u/999") != 1 {
		t.Fatal("the last entry is not reachable by its tag")
	}
}

// L1 keys are hashed with a seed of each cache's own, so collisions cannot
// be computed from outside: two caches hash a key differently, and neither
// as bigcache's default FNV-1a does.
func TestL1KeyHashIsSeeded(t *testing.T) {
	a, b := NewKeyHasher(), NewKeyHasher()
	const key = "GET\x00example.com\x00/api/users/1/profile"
	fnv := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		fnv ^= uint64(key[i])
		fnv *= 1099511628211
	}
	if ha, hb := a.Sum64(key), b.Sum64(key); ha == hb || ha == fnv || hb == fnv {
		t.Fatalf("hashes %x and %x (FNV-1a %x): not seeded per cache", ha, hb, fnv)
	}
}

// BenchmarkL1KeyHash compares the seeded key hash with bigcache's default
// FNV-1a on a typical cache key: the one change on the L1-hit path.
func BenchmarkL1KeyHash(b *testing.B) {
	const key = "GET\x00api.spark.example\x00/api/users/12345/profile\x00gzip"
	b.Run("fnv1a", func(b *testing.B) {
		var sink uint64
		for b.Loop() {
			h := uint64(14695981039346656037)
			for i := 0; i < len(key); i++ {
				h ^= uint64(key[i])
				h *= 1099511628211
			}
			sink += h
		}
		_ = sink
	})
	b.Run("seeded", func(b *testing.B) {
		h := NewKeyHasher()
		var sink uint64
		for b.Loop() {
			sink += h.Sum64(key)
		}
		_ = sink
	})
}

// An entry stored again is never missing meanwhile: a reader of a key that
// another request re-stores (a Vary record every user's fill of a private
// URI writes again) finds the old entry or the new one. Deleting before
// storing left a moment with neither, and under load the waiters of a
// coalesced fill that looked in that moment all went to the origin.
func TestRestoredEntryIsNeverMissing(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	mustSet(t, c, "/k", "v", time.Minute, "v:0", "uri:/k")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 20000; i++ {
			tags := []string{fmt.Sprintf("v:%d", i%3), "uri:/k"}
			if ok, err := c.Set(context.Background(), "/k", []byte("v"), time.Minute, tags, c.Generation()); !ok || err != nil {
				t.Errorf("Set = %v, %v", ok, err)
				return
			}
		}
	}()
	misses, reads := 0, 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		if !present(c, "/k") {
			misses++
		}
	}
	if misses > 0 {
		t.Fatalf("%d of %d reads missed an entry that was being stored again", misses, reads)
	}
	if tags, pairs := indexSize(c); tags != 2 || pairs != 2 {
		t.Fatalf("one entry, two tags: the index holds %d tags and %d pairs", tags, pairs)
	}
}
