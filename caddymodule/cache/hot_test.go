package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// versionedOrigin answers with a body naming its version and the caller's
// Authorization, public for an hour with an ETag and a tag.
func versionedOrigin(version *atomic.Int64, calls *atomic.Int64, cacheControl string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		v := strconv.FormatInt(version.Load(), 10)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("Vary", "Accept-Encoding")
		h.Set("Etag", `"v`+v+`"`)
		h.Set(contract.CacheTags, "profile-42")
		_, err := w.Write([]byte(`{"v":` + v + `,"auth":"` + r.Header.Get("Authorization") + `"}`))
		return err
	}
}

func hotCount(c *Cache) int {
	n := 0
	for i := range c.hot.shards {
		s := &c.hot.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

func hotReq(path string, kv ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://spark.test"+path, nil)
	r.Header.Set("Accept-Encoding", "gzip")
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

// A hit from a hot copy is the hit the store path makes: same status,
// header fields and body.
func TestHotHitMatchesStoreHit(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "public, max-age=600")
	serve(t, c, hotReq("/api/p"), origin)
	if hotCount(c) != 0 {
		t.Fatal("a fill made a hot copy")
	}
	fromStore := serve(t, c, hotReq("/api/p"), origin)
	if hotCount(c) != 2 { // the Vary record and the variant
		t.Fatalf("after a store hit: %d hot copies, want 2", hotCount(c))
	}
	fromHot := serve(t, c, hotReq("/api/p"), origin)
	if calls.Load() != 1 {
		t.Fatalf("origin called %d times", calls.Load())
	}
	if fromHot.Code != fromStore.Code || fromHot.Body.String() != fromStore.Body.String() {
		t.Fatalf("hot %d %q, store %d %q", fromHot.Code, fromHot.Body, fromStore.Code, fromStore.Body)
	}
	if len(fromHot.Header()) != len(fromStore.Header()) {
		t.Fatalf("hot header %v, store header %v", fromHot.Header(), fromStore.Header())
	}
	for k, v := range fromStore.Header() {
		if got := fromHot.Header()[k]; len(got) != len(v) || got[0] != v[0] {
			t.Fatalf("%s: hot %q, store %q", k, got, v)
		}
	}
	if fromHot.Header().Get("Cache-Status") != "spark; hit; ttl=600; detail=l1" || fromHot.Header().Get("Content-Length") != strconv.Itoa(fromHot.Body.Len()) {
		t.Fatalf("hot hit header %v", fromHot.Header())
	}
}

// Conditional requests and HEAD are answered from a hot copy as from the
// store; Age follows the clock.
func TestHotHitConditionalHeadAge(t *testing.T) {
	c, now := newUnitCache(t, Policy{}, nil)
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "public, max-age=600")
	serve(t, c, hotReq("/api/p"), origin)
	serve(t, c, hotReq("/api/p"), origin) // makes the copies
	*now = now.Add(7 * time.Second)
	w := serve(t, c, hotReq("/api/p", "If-None-Match", `"v0"`), origin)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" || w.Header().Get("Age") != "7" {
		t.Fatalf("conditional: %d, header %v", w.Code, w.Header())
	}
	head := hotReq("/api/p")
	head.Method = http.MethodHead
	w = serve(t, c, head, origin)
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" || w.Header().Get("Cache-Status") != "spark; hit; ttl=593; detail=l1" {
		t.Fatalf("HEAD: %d, %d bytes, header %v", w.Code, w.Body.Len(), w.Header())
	}
	if calls.Load() != 1 {
		t.Fatalf("origin called %d times", calls.Load())
	}
}

// A purge of the entry's tag ends its hot copy at once.
func TestHotCopyEndsWithPurge(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "public, max-age=600")
	serve(t, c, hotReq("/api/p"), origin)
	serve(t, c, hotReq("/api/p"), origin)
	serve(t, c, hotReq("/api/p"), origin)
	version.Store(1)
	if n := c.store.PurgeTags(context.Background(), "profile-42"); n != 1 {
		t.Fatalf("purge removed %d entries", n)
	}
	w := serve(t, c, hotReq("/api/p"), origin)
	if calls.Load() != 2 || w.Body.String() != `{"v":1,"auth":""}` {
		t.Fatalf("after the purge: %d origin calls, body %q, Cache-Status %q", calls.Load(), w.Body, w.Header().Get("Cache-Status"))
	}
}

// A response this edge stores under the key (here a client's forced
// reload) replaces the hot copy.
func TestHotCopyReplacedByStore(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "public, max-age=600")
	serve(t, c, hotReq("/api/p"), origin)
	serve(t, c, hotReq("/api/p"), origin)
	version.Store(1)
	serve(t, c, hotReq("/api/p", "Cache-Control", "no-cache"), origin)
	if calls.Load() != 2 {
		t.Fatalf("the reload made %d origin calls in all", calls.Load())
	}
	for i := 0; i < 3; i++ {
		if w := serve(t, c, hotReq("/api/p"), origin); w.Body.String() != `{"v":1,"auth":""}` {
			t.Fatalf("hit %d after the reload: %q", i, w.Body)
		}
	}
}

// A response's header values are its own: a later handler editing them in
// place (Caddy's header replacements do) changes no other response.
func TestHotHitHeaderValuesArePerResponse(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "public, max-age=600")
	serve(t, c, hotReq("/api/p"), origin)
	// The first hit (from the store, making the copy) is edited too.
	for i := 0; i < 3; i++ {
		w := serve(t, c, hotReq("/api/p"), origin)
		for k, vs := range w.Header() {
			if k == "Etag" && vs[0] != `"v0"` {
				t.Fatalf("hit %d: Etag %q", i, vs[0])
			}
			for j := range vs {
				vs[j] = "edited"
			}
		}
	}
}

// Private variants stay per credential on the hot path, and what an
// authorized request filled never reaches one without Authorization.
func TestHotCopyPrivatePerCredential(t *testing.T) {
	yes := true
	c, _ := newUnitCache(t, Policy{}, []Rule{{Path: "/api/s", Policy: Policy{Private: &yes, Vary: []string{"Authorization"}}}})
	var version, calls atomic.Int64
	origin := versionedOrigin(&version, &calls, "private, max-age=600")
	for i := 0; i < 3; i++ {
		if w := serve(t, c, hotReq("/api/s", "Authorization", "Bearer a"), origin); w.Body.String() != `{"v":0,"auth":"Bearer a"}` {
			t.Fatalf("user a, request %d: %q", i, w.Body)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("user a: %d origin calls", calls.Load())
	}
	for i := 0; i < 3; i++ {
		if w := serve(t, c, hotReq("/api/s", "Authorization", "Bearer b"), origin); w.Body.String() != `{"v":0,"auth":"Bearer b"}` {
			t.Fatalf("user b, request %d: %q", i, w.Body)
		}
	}
	if w := serve(t, c, hotReq("/api/s"), origin); w.Body.String() != `{"v":0,"auth":""}` {
		t.Fatalf("no credential: %q", w.Body)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d origin calls, want one per viewer", calls.Load())
	}
}

// A copy read before a store is never kept after it.
func TestHotPutRefusedAfterStore(t *testing.T) {
	h := newHotEntries(64 << 20)
	e := &entry{status: 200, header: http.Header{"Etag": {`"x"`}}, body: []byte("x")}
	sets := h.sets.Load()
	h.forget("k")
	h.put(newHotResponse("k", e, time.Now().Add(time.Hour), 0, nil), sets)
	if n := len(h.shard([]byte("k")).m); n != 0 {
		t.Fatalf("%d copies kept", n)
	}
	h.put(newHotResponse("k", e, time.Now().Add(time.Hour), 0, nil), h.sets.Load())
	if n := len(h.shard([]byte("k")).m); n != 1 {
		t.Fatalf("%d copies kept, want 1", n)
	}
}

// The copies stay within their budget; a full shard makes room only by
// dropping expired copies.
func TestHotEntriesBudget(t *testing.T) {
	h := newHotEntries(1 << 20) // 8 KiB a shard
	body := make([]byte, 1000)
	put := func(key string, expires time.Time) {
		e := &entry{status: 200, header: http.Header{}, body: body}
		h.put(newHotResponse(key, e, expires, 0, nil), h.sets.Load())
	}
	for i := 0; i < 1000; i++ {
		put("k"+strconv.Itoa(i), time.Now().Add(time.Hour))
	}
	for i := range h.shards {
		if s := &h.shards[i]; s.bytes > h.budget || len(s.m) == 0 {
			t.Fatalf("shard %d: %d bytes in %d copies, budget %d", i, s.bytes, len(s.m), h.budget)
		}
	}
	if h.admits("another", 1000+hotOverhead, h.sets.Load()) {
		t.Fatal("a full shard admits a copy")
	}
	// Expired copies give their room to new ones.
	h = newHotEntries(1 << 20)
	for i := 0; i < 1000; i++ {
		put("k"+strconv.Itoa(i), time.Now().Add(-time.Second))
	}
	put("fresh", time.Now().Add(time.Hour))
	if h.peek([]byte("fresh")) == nil {
		t.Fatal("a full shard of expired copies refused a fresh one")
	}
}
