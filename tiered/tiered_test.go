package tiered

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for Cache.now.
type fakeClock struct{ ns atomic.Int64 }

func (f *fakeClock) now() time.Time          { return time.Unix(0, f.ns.Load()) }
func (f *fakeClock) advance(d time.Duration) { f.ns.Add(int64(d)) }

// newL1 returns an L1-only cache with a fake clock.
func newL1(t testing.TB, capacity int64, maxEntry int) (*Cache, *fakeClock) {
	t.Helper()
	opts := DefaultOptions()
	opts.Capacity, opts.MaxEntrySize = capacity, maxEntry
	c, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	clk := &fakeClock{}
	clk.ns.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	c.now = clk.now
	return c, clk
}

func mustSet(t testing.TB, c *Cache, key, value string, ttl time.Duration, tags ...string) {
	t.Helper()
	ok, err := c.Set(context.Background(), key, []byte(value), ttl, tags, c.Generation())
	if !ok || err != nil {
		t.Fatalf("Set(%q) = %v, %v", key, ok, err)
	}
}

func present(c *Cache, key string) bool {
	_, _, ok := c.Get(context.Background(), key)
	return ok
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Capacity: 1 << 19, MaxEntrySize: 1 << 10},
		{Capacity: 1 << 20, MaxEntrySize: 0},
		{Capacity: 1 << 20, MaxEntrySize: 1<<18 + 1},
	} {
		if c, err := New(context.Background(), o); err == nil {
			_ = c.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestSetGet(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	ctx := context.Background()
	if _, layer, ok := c.Get(ctx, "/missing"); ok || layer != LayerNone {
		t.Fatalf("Get on empty cache = %q, %v", layer, ok)
	}
	mustSet(t, c, "/a", "alpha", time.Minute, "t1", "t2")
	mustSet(t, c, "/b", "", time.Minute)
	v, layer, ok := c.Get(ctx, "/a")
	if !ok || layer != LayerL1 || string(v) != "alpha" {
		t.Fatalf("Get(/a) = %q, %q, %v", v, layer, ok)
	}
	// The returned slice is the caller's own.
	v[0] = 'X'
	if v2, _, _ := c.Get(ctx, "/a"); string(v2) != "alpha" {
		t.Fatalf("mutating a returned value changed the store: %q", v2)
	}
	if v, _, ok := c.Get(ctx, "/b"); !ok || len(v) != 0 {
		t.Fatalf("empty value: %q, %v", v, ok)
	}
	// Overwrite.
	mustSet(t, c, "/a", "beta", time.Minute)
	if v, _, _ := c.Get(ctx, "/a"); string(v) != "beta" {
		t.Fatalf("after overwrite: %q", v)
	}
	// The value given to Set may be reused by the caller.
	buf := []byte("gamma")
	if ok, err := c.Set(ctx, "/c", buf, time.Minute, nil, c.Generation()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	copy(buf, "XXXXX")
	if v, _, _ := c.Get(ctx, "/c"); string(v) != "gamma" {
		t.Fatalf("store aliases the caller's buffer: %q", v)
	}
	if st := c.Stats(); st.Entries != 3 {
		t.Errorf("Stats().Entries = %d, want 3", st.Entries)
	}
}

func TestTTLExpiry(t *testing.T) {
	opts := DefaultOptions()
	c, clk := newL1(t, 4<<20, 64<<10)
	mustSet(t, c, "/short", "s", 10*time.Second)
	mustSet(t, c, "/long", "l", time.Hour)
	clk.advance(9 * time.Second)
	if !present(c, "/short") {
		t.Fatal("expired early")
	}
	clk.advance(time.Second)
	if present(c, "/short") {
		t.Fatal("served at its expiry instant")
	}
	if !present(c, "/long") {
		t.Fatal("/long expired with /short")
	}
	// Zero and negative TTLs store nothing.
	for _, ttl := range []time.Duration{0, -time.Second} {
		if ok, err := c.Set(context.Background(), "/zero", []byte("z"), ttl, nil, c.Generation()); ok || err != nil {
			t.Errorf("Set with ttl %v = %v, %v", ttl, ok, err)
		}
		if present(c, "/zero") {
			t.Errorf("ttl %v stored", ttl)
		}
	}
	// TTLs are capped at MaxLifetime.
	mustSet(t, c, "/forever", "f", 100*365*24*time.Hour)
	clk.advance(opts.MaxLifetime - time.Second)
	if !present(c, "/forever") {
		t.Fatal("expired before MaxLifetime")
	}
	clk.advance(2 * time.Second)
	if present(c, "/forever") {
		t.Fatal("outlived MaxLifetime")
	}
}

// purge is one purge of a test's steps and what it must leave behind.
type purge struct {
	op   string   // PurgeTags, Delete or PurgePrefix
	args []string // its arguments after the context
	want int      // entries it removes
	gone []string // keys absent after it
	kept []string // keys present after it
}

// runPurges runs steps in order on c and checks each.
func runPurges(t *testing.T, c *Cache, steps ...purge) {
	t.Helper()
	ctx := context.Background()
	for _, p := range steps {
		var n int
		switch p.op {
		case "PurgeTags":
			n = c.PurgeTags(ctx, p.args...)
		case "Delete":
			n = c.Delete(ctx, p.args...)
		case "PurgePrefix":
			n = c.PurgePrefix(ctx, p.args[0])
		default:
			t.Fatalf("unknown purge %q", p.op)
		}
		call := fmt.Sprintf("%s(%q)", p.op, p.args)
		if n != p.want {
			t.Fatalf("%s = %d, want %d", call, n, p.want)
		}
		for _, k := range p.gone {
			if present(c, k) {
				t.Fatalf("after %s %q is still present", call, k)
			}
		}
		for _, k := range p.kept {
			if !present(c, k) {
				t.Fatalf("after %s %q is gone", call, k)
			}
		}
	}
}

func TestPurgeTags(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	mustSet(t, c, "/a", "a", time.Minute, "user:1", "profile:1")
	mustSet(t, c, "/b", "b", time.Minute, "user:1")
	mustSet(t, c, "/c", "c", time.Minute, "user:2")
	mustSet(t, c, "/d", "d", time.Minute)
	runPurges(t, c,
		purge{op: "PurgeTags", args: []string{"nobody"}, want: 0},
		purge{op: "PurgeTags", args: []string{"user:1"}, want: 2, gone: []string{"/a", "/b"}, kept: []string{"/c", "/d"}},
		// The other tags of a purged entry no longer name it.
		purge{op: "PurgeTags", args: []string{"profile:1"}, want: 0},
		purge{op: "PurgeTags", args: []string{"user:1"}, want: 0})
	// Several tags at once; an entry under two of them counts once.
	mustSet(t, c, "/e", "e", time.Minute, "x", "y")
	mustSet(t, c, "/f", "f", time.Minute, "y")
	runPurges(t, c, purge{op: "PurgeTags", args: []string{"x", "y", "user:2"}, want: 3,
		gone: []string{"/c", "/e", "/f"}, kept: []string{"/d"}})
	// Re-stored after a purge, an entry is indexed again.
	mustSet(t, c, "/a", "a2", time.Minute, "user:1")
	runPurges(t, c, purge{op: "PurgeTags", args: []string{"user:1"}, want: 1, gone: []string{"/a"}})
}

func TestDelete(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	mustSet(t, c, "/a", "a", time.Minute, "t")
	mustSet(t, c, "/b", "b", time.Minute)
	runPurges(t, c,
		purge{op: "Delete", args: []string{"/a", "/missing"}, want: 1},
		purge{op: "Delete", want: 0, gone: []string{"/a"}, kept: []string{"/b"}})
	c.mu.Lock()
	_, indexed := c.tags["t"]
	c.mu.Unlock()
	if indexed {
		t.Fatal("deleted entry left in the tag index")
	}
}

func TestPurgePrefix(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	for _, k := range []string{"/api/users/1\x00h", "/api/users/1?x=1\x00h", "/api/users/10\x00h", "/api/usersX\x00h", "/static/a\x00h"} {
		mustSet(t, c, k, k, time.Minute, "tag")
	}
	runPurges(t, c,
		purge{op: "PurgePrefix", args: []string{"/api/users/1"}, want: 3,
			gone: []string{"/api/users/1\x00h", "/api/users/10\x00h"}, kept: []string{"/api/usersX\x00h", "/static/a\x00h"}},
		purge{op: "PurgePrefix", args: []string{"/nothing"}, want: 0},
		purge{op: "PurgePrefix", args: []string{"/"}, want: 2})
}

func TestErrTooLarge(t *testing.T) {
	const maxEntry = 64 << 10
	c, _ := newL1(t, 4<<20, maxEntry)
	ctx := context.Background()
	key, tag := "/k", "tag"
	overhead := entryHeader + len(key) + 2 + len(tag)
	fits := make([]byte, maxEntry-overhead)
	if ok, err := c.Set(ctx, key, fits, time.Minute, []string{tag}, c.Generation()); !ok || err != nil {
		t.Fatalf("entry of exactly MaxEntrySize: %v, %v", ok, err)
	}
	if v, _, ok := c.Get(ctx, key); !ok || len(v) != len(fits) {
		t.Fatal("entry of exactly MaxEntrySize not readable")
	}
	tooBig := make([]byte, maxEntry-overhead+1)
	if ok, err := c.Set(ctx, "/k2", tooBig, time.Minute, []string{tag}, c.Generation()); ok || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized value: %v, %v; want ErrTooLarge", ok, err)
	}
	// Tags count toward the size.
	if ok, err := c.Set(ctx, "/k3", fits, time.Minute, []string{tag, "another"}, c.Generation()); ok || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized with tags: %v, %v; want ErrTooLarge", ok, err)
	}
	if present(c, "/k2") || present(c, "/k3") {
		t.Fatal("oversized entry stored")
	}
	// A rejected entry is not left in the tag index.
	c.mu.Lock()
	_, k2 := c.tags[tag]["/k2"]
	c.mu.Unlock()
	if k2 {
		t.Fatal("rejected entry indexed")
	}
	// A tag longer than the format allows is an error, not a corrupt entry.
	if ok, err := c.Set(ctx, "/k4", []byte("v"), time.Minute, []string{string(make([]byte, 0x10000))}, c.Generation()); ok || err == nil {
		t.Fatalf("65536-byte tag: %v, %v", ok, err)
	}
}

// A fill whose generation was taken before a purge of its key, one of its
// tags or a prefix of its key must not store, whatever kind of purge it was;
// purges of other entries do not stop it.
func TestStaleGenerationNotStored(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	ctx := context.Background()
	cases := []struct {
		name   string
		purge  func()
		stores bool
	}{
		{"tag", func() { c.PurgeTags(ctx, "t") }, false},
		{"delete", func() { c.Delete(ctx, "/fill") }, false},
		{"prefix", func() { c.PurgePrefix(ctx, "/fi") }, false},
		{"unrelated tag", func() { c.PurgeTags(ctx, "unrelated") }, true},
		{"unrelated delete", func() { c.Delete(ctx, "/unrelated") }, true},
		{"unrelated prefix", func() { c.PurgePrefix(ctx, "/unrelated") }, true},
		{"no tags", func() { c.PurgeTags(ctx) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gen := c.Generation()
			tc.purge()
			if c.Generation() == gen {
				t.Fatal("purge did not advance the generation")
			}
			ok, err := c.Set(ctx, "/fill", []byte("old"), time.Minute, []string{"t"}, gen)
			if ok != tc.stores || err != nil {
				t.Fatalf("Set with pre-purge generation = %v, %v; want %v", ok, err, tc.stores)
			}
			if present(c, "/fill") != tc.stores {
				t.Fatalf("entry present = %v, want %v", !tc.stores, tc.stores)
			}
			// A fill that starts after the purge stores.
			mustSet(t, c, "/fill", "new", time.Minute, "t")
			c.Delete(ctx, "/fill")
		})
	}
}

// More purges during one fill than the cache remembers: not stored.
func TestFillSpanningManyPurgesNotStored(t *testing.T) {
	c, _ := newL1(t, 4<<20, 64<<10)
	ctx := context.Background()
	gen := c.Generation()
	for i := 0; i < purgeLogSize+1; i++ {
		c.PurgeTags(ctx, "unrelated")
	}
	if ok, _ := c.Set(ctx, "/fill", []byte("old"), time.Minute, nil, gen); ok {
		t.Fatal("a fill older than the purge log was stored")
	}
}

// A purge that lands while Set is running, after its first generation check
// and before the entry is in L1 and the tag index, must still win. Cache.now
// is called inside that window, which lets the test place the purge there.
func TestPurgeDuringSetWins(t *testing.T) {
	for _, kind := range []string{"tags", "delete", "prefix"} {
		t.Run(kind, func(t *testing.T) {
			c, clk := newL1(t, 4<<20, 64<<10)
			ctx := context.Background()
			var fired atomic.Bool
			inSet := make(chan struct{})
			c.now = func() time.Time {
				if fired.CompareAndSwap(false, true) {
					close(inSet)
					switch kind {
					case "tags":
						c.PurgeTags(ctx, "user:1")
					case "delete":
						c.Delete(ctx, "/p")
					case "prefix":
						c.PurgePrefix(ctx, "/")
					}
				}
				return clk.now()
			}
			gen := c.Generation()
			ok, err := c.Set(ctx, "/p", []byte("stale"), time.Minute, []string{"user:1"}, gen)
			select {
			case <-inSet:
			default:
				t.Fatal("the purge hook did not run inside Set")
			}
			if ok || err != nil {
				t.Fatalf("Set across a purge = %v, %v; want false", ok, err)
			}
			if present(c, "/p") {
				t.Fatal("fill in flight during a purge was stored")
			}
		})
	}
}

// Many fills race with purges. After each round, anything still stored must
// come from a fill that took its generation after the round's last purge
// began, and a purge of its tag must remove it.
func TestPurgeVersusInflightFillsConcurrent(t *testing.T) {
	c, _ := newL1(t, 8<<20, 64<<10)
	// Set calls now between its generation check and storing: yielding
	// there widens the window a purge must not slip through.
	c.now = func() time.Time { runtime.Gosched(); return time.Now() }
	ctx := context.Background()
	const (
		rounds  = 100
		writers = 8
		keys    = 4
	)
	value := func(gen uint64) []byte { return binary.LittleEndian.AppendUint64(nil, gen) }
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				for i := 0; i < 20; i++ {
					gen := c.Generation()
					key := "/k" + strconv.Itoa((w+i)%keys)
					if _, err := c.Set(ctx, key, value(gen), time.Minute, []string{"all", key}, gen); err != nil {
						t.Error(err)
					}
				}
			}(w)
		}
		writersDone := make(chan struct{})
		purgerDone := make(chan struct{})
		var lastPurgeFrom uint64 // the generation before the last purge began
		go func() {
			defer close(purgerDone)
			<-start
			for i := 0; ; i++ {
				lastPurgeFrom = c.Generation()
				switch (round + i) % 3 {
				case 0:
					c.PurgeTags(ctx, "all")
				case 1:
					c.Delete(ctx, "/k0", "/k1", "/k2", "/k3")
				case 2:
					c.PurgePrefix(ctx, "/k")
				}
				select {
				case <-writersDone:
					return
				default:
				}
			}
		}()
		close(start)
		wg.Wait()
		close(writersDone)
		<-purgerDone
		for k := 0; k < keys; k++ {
			key := "/k" + strconv.Itoa(k)
			v, _, ok := c.Get(ctx, key)
			if !ok {
				continue
			}
			if gen := binary.LittleEndian.Uint64(v); gen <= lastPurgeFrom {
				t.Fatalf("round %d: %s holds a fill from generation %d, taken before the last purge (from generation %d)", round, key, gen, lastPurgeFrom)
			}
		}
		// Settle: a purge now must remove whatever is stored.
		c.PurgeTags(ctx, "all")
		for k := 0; k < keys; k++ {
			if key := "/k" + strconv.Itoa(k); present(c, key) {
				t.Fatalf("round %d: %s survived a purge of its tag", round, key)
			}
		}
	}
}

// Entries evicted for space leave the tag index, so the index cannot grow
// without bound and a purge never counts entries that are gone.
func TestEvictionCleansTagIndex(t *testing.T) {
	c, _ := newL1(t, 1<<20, 64<<10)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 16<<10)
	const n = 300 // ~4.8 MB into 1 MiB
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("/e/%d", i)
		if ok, err := c.Set(ctx, key, val, time.Hour, []string{"all", "e:" + strconv.Itoa(i)}, c.Generation()); !ok || err != nil {
			t.Fatalf("Set(%s) = %v, %v", key, ok, err)
		}
	}
	if !present(c, fmt.Sprintf("/e/%d", n-1)) {
		t.Fatal("newest entry missing")
	}
	if present(c, "/e/0") {
		t.Fatal("oldest entry not evicted: the test did not fill the cache")
	}
	c.mu.Lock()
	indexed := len(c.tags["all"])
	tagCount := len(c.tags)
	var stale []string
	for k := range c.tags["all"] {
		if _, err := c.l1.Get(k); err != nil {
			stale = append(stale, k)
		}
	}
	_, evictedTag := c.tags["e:0"]
	c.mu.Unlock()
	if len(stale) > 0 {
		t.Fatalf("%d evicted keys still indexed, e.g. %q", len(stale), stale[0])
	}
	if evictedTag {
		t.Fatal("tag of an evicted entry still indexed")
	}
	if entries := c.Stats().Entries; indexed != entries || tagCount != entries+1 {
		t.Fatalf("index holds %d keys under %d tags for %d entries", indexed, tagCount, entries)
	}
	if got := c.PurgeTags(ctx, "all"); got != indexed {
		t.Fatalf("PurgeTags(all) = %d, want %d", got, indexed)
	}
	c.mu.Lock()
	left := len(c.tags)
	c.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d tags left in the index after purging everything", left)
	}
}

func TestShardCount(t *testing.T) {
	cases := []struct {
		capacity int64
		maxEntry int
		want     int
	}{
		{256 << 20, 1 << 20, 32},
		{1 << 20, 64 << 10, 2},
		{1 << 20, 256 << 10, 1},
		{1 << 30, 1 << 10, 256},
	}
	for _, tc := range cases {
		got := shardCount(tc.capacity, tc.maxEntry)
		if got != tc.want {
			t.Errorf("shardCount(%d, %d) = %d, want %d", tc.capacity, tc.maxEntry, got, tc.want)
		}
		if tc.capacity/int64(got) < 4*int64(tc.maxEntry) && got > 1 {
			t.Errorf("shardCount(%d, %d) = %d leaves shards too small", tc.capacity, tc.maxEntry, got)
		}
	}
}

func TestGetEntryExpiry(t *testing.T) {
	c, clk := newL1(t, 1<<20, 1<<10)
	mustSet(t, c, "/e", "v", 90*time.Second)
	e, ok := c.GetEntry(context.Background(), "/e")
	if !ok || string(e.Value) != "v" || e.Layer != LayerL1 {
		t.Fatalf("GetEntry = %+v, %v", e, ok)
	}
	if want := clk.now().Add(90 * time.Second); !e.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", e.Expires, want)
	}
	clk.advance(91 * time.Second)
	if _, ok := c.GetEntry(context.Background(), "/e"); ok {
		t.Error("expired entry returned")
	}
}

func TestPurgedSince(t *testing.T) {
	c, _ := newL1(t, 1<<20, 1<<10)
	ctx := context.Background()
	mustSet(t, c, "/a", "a", time.Minute, "t:a")
	mustSet(t, c, "/b", "b", time.Minute, "t:b")
	gen := c.Generation()
	if c.PurgedSince(gen, "/a", []string{"t:a"}) {
		t.Fatal("no purge yet, but PurgedSince is true")
	}
	c.Delete(ctx, "/b")
	if c.PurgedSince(gen, "/a", []string{"t:a"}) {
		t.Error("a purge of /b made /a stale")
	}
	if !c.PurgedSince(gen, "/b", nil) {
		t.Error("deleted key not reported")
	}
	c.PurgeTags(ctx, "t:a")
	if !c.PurgedSince(gen, "/a", []string{"t:a"}) {
		t.Error("tag purge not reported")
	}
	if c.PurgedSince(c.Generation(), "/a", []string{"t:a"}) {
		t.Error("purge before the generation reported")
	}
	gen = c.Generation()
	for i := 0; i < purgeLogSize; i++ {
		c.Delete(ctx, "/other")
	}
	if !c.PurgedSince(gen, "/a", nil) {
		t.Error("more purges than remembered, but not reported stale")
	}
}
