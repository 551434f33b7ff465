package tiered

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzSetGet stores fuzzed keys, values and tags and reads them back; a tag
// purge removes exactly what it indexed.
func FuzzSetGet(f *testing.F) {
	f.Add("/api/users/1\x00h", []byte(`{"id":1}`), "user:1 profile:1")
	f.Add("", []byte{}, "")
	f.Add("\xff\xfe", []byte{0, 0, 0}, "\x00 \xff")
	f.Add("/k", bytes.Repeat([]byte("x"), 70000), "big")
	c, _ := newL1(f, 4<<20, 64<<10)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, key string, value []byte, tagList string) {
		tags := strings.Fields(tagList)
		ok, err := c.Set(ctx, key, value, time.Minute, tags, c.Generation())
		if err != nil {
			if ok || present(c, key) {
				t.Fatalf("Set failed (%v) but stored", err)
			}
			return
		}
		if !ok {
			t.Fatal("Set refused with no error and no purge")
		}
		v, layer, found := c.Get(ctx, key)
		if !found || layer != LayerL1 || !bytes.Equal(v, value) {
			t.Fatalf("Get(%q) = %q, %v; want %q", key, v, found, value)
		}
		if len(tags) > 0 {
			if n := c.PurgeTags(ctx, tags...); n != 1 {
				t.Fatalf("PurgeTags(%q) = %d, want 1", tags, n)
			}
		} else if n := c.Delete(ctx, key); n != 1 {
			t.Fatalf("Delete = %d, want 1", n)
		}
		if present(c, key) {
			t.Fatal("present after purge")
		}
	})
}

// FuzzOnRemove feeds the eviction callback arbitrary bytes: it must never
// panic, whatever bigcache hands it.
func FuzzOnRemove(f *testing.F) {
	f.Add("k", []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 0, 'a', 'b', 'c'})
	f.Add("k", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add("", []byte{})
	c, _ := newL1(f, 1<<20, 1<<10)
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		c.onRemove(key, b, 0)
	})
}

// FuzzUnwrap feeds entry parsing arbitrary bytes, as a corrupt or foreign
// value in Redis would: never a panic, and a value only from a well-formed,
// unexpired entry.
func FuzzUnwrap(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0, 1, 0, 't', 'v'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 0, 9, 0})
	f.Add([]byte{})
	c, _ := newL1(f, 1<<20, 1<<10)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := c.unwrap(b)
		if ok && (len(b) < entryHeader || len(v) > len(b)-entryHeader) {
			t.Fatalf("unwrap accepted %d bytes, value of %d", len(b), len(v))
		}
		for _, tag := range entryTags(b) {
			if len(tag) > len(b) {
				t.Fatal("tag longer than the entry")
			}
		}
	})
}

// FuzzPendingBlocks feeds the pending set's entry parsing arbitrary bytes,
// as a corrupt or foreign value in Redis would: never a panic; a well-formed
// entry is blocked exactly when it carries the pending purge's tag.
func FuzzPendingBlocks(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 't', 'v'}, "t")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 9, 0}, "")
	f.Add([]byte{}, "user:1")
	f.Fuzz(func(t *testing.T, b []byte, tag string) {
		var s pendingPurges
		s.begin(purgeMessage{Tags: []string{tag}}, purgeMessage{})
		s.blocks("/k", b)
		if len(tag) > 0xffff {
			return
		}
		if !s.blocks("/k", entryWithTags("a", tag)) {
			t.Fatalf("an entry tagged %q was not blocked", tag)
		}
		if tag != "a" && s.blocks("/k", entryWithTags("a")) {
			t.Fatalf("an entry without %q was blocked", tag)
		}
	})
}
