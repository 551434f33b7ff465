package cache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/tiered"
)

// newTestCache builds a Cache over a real L1 of capacity bytes (closed at
// the test's end), for the edge's codings zstd, br, gzip.
func newTestCache(tb testing.TB, capacity int64, def Policy, rules []Rule) *Cache {
	tb.Helper()
	opts := tiered.DefaultOptions()
	opts.Capacity, opts.MaxEntrySize = capacity, 1<<20
	store, err := tiered.New(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return newCache(store, newMetrics(store, "test"), zap.NewNop(), def, rules, []string{"zstd", "br", "gzip"}, 1<<20)
}

// newUnitCache builds a Cache over a real L1 with a settable clock.
func newUnitCache(t *testing.T, def Policy, rules []Rule) (*Cache, *time.Time) {
	t.Helper()
	c := newTestCache(t, 8<<20, def, rules)
	now := time.Now()
	c.now = func() time.Time { return now }
	t.Cleanup(c.Wait)
	return c, &now
}

// exchangeFor is the exchange ServeHTTP would make for a GET or HEAD r.
func exchangeFor(tb testing.TB, c *Cache, r *http.Request) *exchange {
	tb.Helper()
	x := &exchange{c: c, w: httptest.NewRecorder(), r: withReplacer(r)}
	if err := x.prepare(); err != nil {
		tb.Fatal(err)
	}
	x.setKey()
	return x
}

func serve(t *testing.T, c *Cache, r *http.Request, next handlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := c.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return w
}

func TestServeHitHeaders(t *testing.T) {
	c, now := newUnitCache(t, Policy{}, nil)
	var calls atomic.Int64
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=100, stale-while-revalidate=50")
		w.Header().Set("Etag", `"e1"`)
		_, err := w.Write([]byte(`{"ok":true}`))
		return err
	})
	noNext := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	req := func(method string, kv ...string) *http.Request {
		r := httptest.NewRequest(method, "http://spark.test/api/x?b=1&a=2", nil)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	if w := serve(t, c, req(http.MethodGet), origin); w.Header().Get("Cache-Status") != "spark; fwd=miss; stored" {
		t.Fatalf("fill: %q", w.Header().Get("Cache-Status"))
	}

	*now = now.Add(10 * time.Second)
	w := serve(t, c, req(http.MethodGet), noNext)
	if w.Code != 200 || w.Body.String() != `{"ok":true}` {
		t.Fatalf("hit: %d %q", w.Code, w.Body.String())
	}
	for k, want := range map[string]string{"Age": "10", "Cache-Status": "spark; hit; ttl=90; detail=l1", "Content-Length": "11", "Etag": `"e1"`, "Content-Type": "application/json"} {
		if got := w.Header().Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("hit %s = %q, want %q", k, got, want)
		}
	}
	// Middleware appending to one value must not overwrite another.
	h := w.Header()
	h["Age"] = append(h["Age"], "x")
	h["Cache-Status"] = append(h["Cache-Status"], "y")
	if h.Get("Cache-Status") != "spark; hit; ttl=90; detail=l1" || h.Get("Content-Length") != "11" {
		t.Fatalf("shared header values clobbered: %v", h)
	}

	// The query order does not matter.
	r := httptest.NewRequest(http.MethodGet, "http://spark.test/api/x?a=2&b=1", nil)
	if w := serve(t, c, r, noNext); w.Code != 200 {
		t.Fatalf("permuted query: %d", w.Code)
	}

	// HEAD from the stored GET: the length, no body.
	w = serve(t, c, req(http.MethodHead), noNext)
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "11" {
		t.Fatalf("HEAD: %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}

	// A matching If-None-Match: 304 without length or content fields.
	w = serve(t, c, req(http.MethodGet, "If-None-Match", `W/"e1"`), noNext)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "" || w.Header().Get("Content-Type") != "" {
		t.Fatalf("304: %d, header %v", w.Code, w.Header())
	}
	if w.Header().Get("Cache-Status") != "spark; hit; ttl=90; detail=l1" || w.Header().Get("Age") != "10" || w.Header().Get("Etag") != `"e1"` {
		t.Fatalf("304 header %v", w.Header())
	}

	// Stale within stale-while-revalidate: served, refreshed once behind.
	*now = now.Add(100 * time.Second)
	w = serve(t, c, req(http.MethodGet), origin)
	if got := w.Header().Get("Cache-Status"); got != "spark; hit; ttl=-10; detail=l1-stale-while-revalidate" {
		t.Fatalf("stale: Cache-Status %q", got)
	}
	c.Wait()
	if calls.Load() != 2 {
		t.Fatalf("origin calls %d, want 2 (fill and one background refresh)", calls.Load())
	}
}

// only-if-cached on a miss: a 504 left to Caddy's error handling (so
// handle_errors sees it), with its Cache-Status already on the response.
func TestOnlyIfCachedMiss(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, nil)
	r := httptest.NewRequest(http.MethodGet, "http://spark.test/x", nil)
	r.Header.Set("Cache-Control", "only-if-cached")
	w := httptest.NewRecorder()
	err := c.ServeHTTP(w, r, handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled }))
	var he caddyhttp.HandlerError
	if errors.Is(err, errNextCalled) || !errors.As(err, &he) || he.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached miss: %v, want a 504 HandlerError", err)
	}
	if cs := w.Header().Get("Cache-Status"); cs != "spark; fwd=miss; detail=only-if-cached" {
		t.Fatalf("only-if-cached miss: Cache-Status %q", cs)
	}
}
