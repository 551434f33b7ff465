package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A 304's Age counts for the refreshed entry: a 304 as old as the
// response's lifetime (an upstream cache's, say) leaves the entry stale, so
// the next use is revalidated again rather than served as fresh.
func TestRefreshCounts304Age(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	var conditional atomic.Int64
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Age", "30")
		w.Header().Set("Etag", `"a"`)
		if r.Header.Get("If-None-Match") == `"a"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		_, err := w.Write([]byte("aged"))
		return err
	})
	for i := 0; i < 3; i++ {
		w := serve(t, c, httptest.NewRequest(http.MethodGet, "http://spark.test/aged", nil), origin)
		if cs := w.Header().Get("Cache-Status"); i > 0 && !strings.Contains(cs, "fwd-status=304") {
			t.Fatalf("use %d: Cache-Status %q, want a revalidation", i, cs)
		}
		if w.Body.String() != "aged" {
			t.Fatalf("use %d: %q", i, w.Body.String())
		}
	}
	if conditional.Load() != 2 {
		t.Fatalf("%d revalidations, want 2", conditional.Load())
	}
}

// TestPurgeBetweenLookupAndRevalidation: a purge that lands after the
// lookup found a stale entry and before the origin's 304 arrives is not
// undone by the refresh (issue 10, item 3). The clock the cache reads right
// after its lookup runs the purge, so the race is hit every time.
func TestPurgeBetweenLookupAndRevalidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cc   string // Cache-Control of the first response
		// fireAt: which clock reading after the stale request starts runs
		// the purge: 1 is ServeHTTP's right after its lookup, 2 the
		// background refresh's start of fetch (after its own lookup).
		fireAt int64
		purge  func(c *Cache)
	}{
		{"tag purge, revalidation", "max-age=10", 1, func(c *Cache) { c.store.PurgeTags(context.Background(), "profile:42") }},
		{"URI purge, revalidation", "max-age=10", 1, func(c *Cache) {
			_, tag := primaryKey("spark.test", "/api/users/42/profile", "", nil)
			c.store.PurgeTags(context.Background(), tag)
		}},
		{"tag purge, stale-while-revalidate refresh", "max-age=10, stale-while-revalidate=60", 2, func(c *Cache) {
			c.store.PurgeTags(context.Background(), "profile:42")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, now := newUnitCache(t, Policy{}, nil)
			var armed atomic.Bool
			var reads atomic.Int64
			clock := *now
			c.now = func() time.Time {
				if armed.Load() && reads.Add(1) == tc.fireAt {
					tc.purge(c)
					armed.Store(false)
				}
				return clock
			}
			var full, conditional atomic.Int64
			origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if r.Header.Get("If-None-Match") == `"v1"` {
					conditional.Add(1)
					w.Header().Set("Cache-Control", "max-age=100")
					w.WriteHeader(http.StatusNotModified)
					return nil
				}
				full.Add(1)
				w.Header().Set("Cache-Control", tc.cc)
				w.Header().Set("Etag", `"v1"`)
				w.Header().Set("Cache-Tags", "user:42 profile:42")
				_, err := w.Write([]byte("profile v1"))
				return err
			})
			get := func() *httptest.ResponseRecorder {
				return serve(t, c, httptest.NewRequest(http.MethodGet, "http://spark.test/api/users/42/profile", nil), origin)
			}
			if w := get(); !strings.Contains(w.Header().Get("Cache-Status"), "stored") {
				t.Fatalf("fill: %q", w.Header().Get("Cache-Status"))
			}
			clock = clock.Add(20 * time.Second) // stale
			armed.Store(true)
			w := get()
			c.Wait() // the background refresh, if any
			if armed.Load() || conditional.Load() != 1 {
				t.Fatalf("purge armed=%v, conditional requests %d: the race was not set up", armed.Load(), conditional.Load())
			}
			if w.Body.String() != "profile v1" {
				t.Fatalf("revalidating request got %q", w.Body.String())
			}
			// The purge happened after this request's lookup: what the 304
			// refreshed must not be back in the cache.
			w = get()
			if strings.Contains(w.Header().Get("Cache-Status"), "hit") || full.Load() != 2 {
				t.Fatalf("after the purge: Cache-Status %q, full origin fetches %d; want a miss (the 304 undid the purge)",
					w.Header().Get("Cache-Status"), full.Load())
			}
		})
	}
}

// TestRefreshKeepsTags: an entry refreshed by a 304 is stored under its
// tags again, so a later tag purge removes it (the 304 has no Cache-Tags).
func TestRefreshKeepsTags(t *testing.T) {
	c, now := newUnitCache(t, Policy{}, nil)
	var full atomic.Int64
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=100")
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		full.Add(1)
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Cache-Tags", "profile:7")
		_, err := w.Write([]byte("seven"))
		return err
	})
	get := func() string {
		w := serve(t, c, httptest.NewRequest(http.MethodGet, "http://spark.test/p/7", nil), origin)
		return w.Header().Get("Cache-Status")
	}
	get()
	*now = now.Add(20 * time.Second)
	if cs := get(); !strings.Contains(cs, "fwd-status=304") {
		t.Fatalf("revalidation: %q", cs)
	}
	if cs := get(); !strings.Contains(cs, "hit") {
		t.Fatalf("after the 304: %q", cs)
	}
	// The refreshed entry carries its tags itself.
	e, _ := exchangeFor(t, c, httptest.NewRequest(http.MethodGet, "http://spark.test/p/7", nil)).lookup()
	if e == nil || strings.Join(e.tags(), " ") != "profile:7" {
		t.Fatalf("refreshed entry tags %v", e)
	}
	if n := c.store.PurgeTags(context.Background(), "profile:7"); n < 1 {
		t.Fatalf("tag purge removed %d", n)
	}
	if cs := get(); strings.Contains(cs, "hit") || full.Load() != 2 {
		t.Fatalf("after the tag purge: %q, %d full fetches", cs, full.Load())
	}
}

// Close cancels the background refreshes and returns at once: a config
// reload (Cleanup) never waits on the origin.
func TestCloseCancelsBackgroundRefresh(t *testing.T) {
	c, now := newUnitCache(t, Policy{}, nil)
	refreshing := make(chan struct{})
	var cancelled atomic.Bool
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("If-None-Match") == "" {
			w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=100")
			w.Header().Set("Etag", `"a"`)
			_, err := w.Write([]byte("a"))
			return err
		}
		close(refreshing)
		<-r.Context().Done() // an origin that never answers
		cancelled.Store(true)
		return r.Context().Err()
	})
	get := func() string {
		w := serve(t, c, httptest.NewRequest(http.MethodGet, "http://spark.test/slow-refresh", nil), origin)
		return w.Header().Get("Cache-Status")
	}
	get()
	*now = now.Add(20 * time.Second)
	if cs := get(); !strings.Contains(cs, "stale-while-revalidate") {
		t.Fatalf("stale use: %q", cs)
	}
	select {
	case <-refreshing:
	case <-time.After(10 * time.Second):
		t.Fatal("no background refresh reached the origin")
	}
	start := time.Now()
	c.Close()
	if took := time.Since(start); took >= closeWait || !cancelled.Load() {
		t.Fatalf("Close took %s, refresh cancelled: %v", took, cancelled.Load())
	}
}
