package cache

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// benchWriter is a cheap reusable http.ResponseWriter.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(s int)           { w.status = s }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// handlerFunc adapts a function to caddyhttp.Handler.
type handlerFunc func(http.ResponseWriter, *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

var benchBody = func() []byte {
	b := []byte(`{"id":42,"name":"Ada","bio":"`)
	for len(b) < 1024-2 {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	if len(b) != 1024 {
		panic("benchBody is not 1 KB")
	}
	return b
}()

// newBenchCache builds a Cache over a real tiered L1 and an origin that
// serves a 1 KB JSON body with Vary: Accept-Encoding.
func newBenchCache(tb testing.TB) (*Cache, *atomic.Int64, handlerFunc) {
	tb.Helper()
	c := newTestCache(tb, 64<<20, Policy{}, []Rule{{Path: "/api/users/*/profile", Policy: Policy{TTL: 0}}})
	var calls atomic.Int64
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Vary", "Accept-Encoding")
		h.Set("Etag", `"v1"`)
		h.Set("Content-Length", strconv.Itoa(len(benchBody)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(benchBody)
		return err
	})
	return c, &calls, origin
}

// benchRequest is a GET of path as Caddy's server hands it to handlers:
// with a replacer and the other request values in its context.
func benchRequest(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.spark.test"+path, nil)
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), nil, nil)
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "Spark/3.1 (iPhone; iOS 18.1)")
	return r
}

var errNextCalled = errors.New("next handler called on the hit path")

func BenchmarkHitPath(b *testing.B) {
	c, calls, origin := newBenchCache(b)
	r := benchRequest("/api/users/42/profile?b=2&a=1")
	fill := httptest.NewRecorder()
	if err := c.ServeHTTP(fill, r, origin); err != nil {
		b.Fatal(err)
	}
	if calls.Load() != 1 || !strings.Contains(fill.Header().Get("Cache-Status"), "stored") {
		b.Fatalf("fill: calls=%d Cache-Status=%q", calls.Load(), fill.Header().Get("Cache-Status"))
	}
	next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	w := &benchWriter{h: make(http.Header)}
	// One checked hit before timing.
	if err := c.ServeHTTP(w, r, next); err != nil {
		b.Fatal(err)
	}
	if w.status != 200 || w.n != len(benchBody) || !strings.HasPrefix(w.h.Get("Cache-Status"), "spark; hit; ttl=") ||
		w.h.Get("Content-Length") != "1024" || w.h.Get("Etag") != `"v1"` {
		b.Fatalf("hit: status %d, %d bytes, header %v", w.status, w.n, w.h)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.reset()
		if err := c.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
		if w.n != len(benchBody) {
			b.Fatalf("wrote %d bytes", w.n)
		}
	}
	b.StopTimer()
	if calls.Load() != 1 {
		b.Fatalf("origin called %d times", calls.Load())
	}
}

func BenchmarkHitPathParallel(b *testing.B) {
	c, _, origin := newBenchCache(b)
	r := benchRequest("/api/users/42/profile")
	if err := c.ServeHTTP(httptest.NewRecorder(), r, origin); err != nil {
		b.Fatal(err)
	}
	next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: make(http.Header)}
		for pb.Next() {
			w.reset()
			if err := c.ServeHTTP(w, r, next); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPrimaryKey(b *testing.B) {
	b.Run("no query", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			primaryKey("api.spark.test", "/api/users/42/profile", "", nil)
		}
	})
	b.Run("sorted query", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			primaryKey("api.spark.test", "/api/suggestions", "limit=20", nil)
		}
	})
	b.Run("unsorted query with ignore", func(b *testing.B) {
		b.ReportAllocs()
		ig := []string{"utm_*", "fbclid"}
		for i := 0; i < b.N; i++ {
			primaryKey("api.spark.test", "/api/suggestions", "utm_source=x&limit=20&after=abc&fbclid=1", ig)
		}
	})
}

func BenchmarkSecondaryKey(b *testing.B) {
	h := benchRequest("/").Header
	h.Set("Accept-Language", "en-US,en;q=0.9,fr;q=0.5")
	b.Run("accept-encoding", func(b *testing.B) {
		b.ReportAllocs()
		fields := []string{"accept-encoding"}
		for i := 0; i < b.N; i++ {
			secondaryKey("/p\x00h", h, fields, "", testEncodings)
		}
	})
	b.Run("accept-encoding+language", func(b *testing.B) {
		b.ReportAllocs()
		fields := []string{"accept-encoding", "accept-language"}
		for i := 0; i < b.N; i++ {
			secondaryKey("/p\x00h", h, fields, "", testEncodings)
		}
	})
}

func BenchmarkDecodeEntry(b *testing.B) {
	e := &entry{
		status: 200,
		header: http.Header{
			"Content-Type":  {"application/json"},
			"Cache-Control": {"public, max-age=3600"},
			"Vary":          {"Accept-Encoding"},
			"Etag":          {`"v1"`},
			"Date":          {t0HTTP},
		},
		body: benchBody, stored: t0, fresh: time.Hour, swr: -1, sie: -1,
	}
	buf := encodeEntry(nil, e)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		if _, err := decodeEntry(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	c, _, origin := newBenchCache(b)
	r := benchRequest("/api/users/42/profile")
	if err := c.ServeHTTP(httptest.NewRecorder(), r, origin); err != nil {
		b.Fatal(err)
	}
	x := exchangeFor(b, c, r)
	if e, _ := x.lookup(); e == nil {
		b.Fatal("lookup missed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if e, _ := x.lookup(); e == nil {
			b.Fatal("lookup missed")
		}
	}
}

// TestHitPathNeverCallsNext is the benchmark's setup as a test, so that
// plain go test checks it.
func TestHitPathNeverCallsNext(t *testing.T) {
	c, calls, origin := newBenchCache(t)
	r := benchRequest("/api/users/42/profile")
	if err := c.ServeHTTP(httptest.NewRecorder(), r, origin); err != nil {
		t.Fatal(err)
	}
	next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	w := &benchWriter{h: make(http.Header)}
	for i := 0; i < 3; i++ {
		w.reset()
		if err := c.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if w.status != 200 || w.n != len(benchBody) || w.h.Get("Cache-Status") != "spark; hit; ttl=3599; detail=l1" && w.h.Get("Cache-Status") != "spark; hit; ttl=3600; detail=l1" {
			t.Fatalf("hit %d: status %d, %d bytes, Cache-Status %q", i, w.status, w.n, w.h.Get("Cache-Status"))
		}
		if w.h.Get("Age") != "0" || w.h.Get("Content-Length") != "1024" || w.h.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("hit header %v", w.h)
		}
	}
	// Another coding bucket is another variant: a miss.
	r2 := benchRequest("/api/users/42/profile")
	r2.Header.Set("Accept-Encoding", "identity")
	if err := c.ServeHTTP(&benchWriter{h: make(http.Header)}, r2, next); !errors.Is(err, errNextCalled) {
		t.Fatalf("other variant: err %v, want a miss", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("origin called %d times", calls.Load())
	}
}

// hitAllocs is what a hit from a hot copy costs in allocations: the
// response's own header value slices (see serveHot). Keys are built on the
// stack and the store is not read. A change that adds one (the exchange
// leaving the stack, say) shows here before it shows in BenchmarkHitPath.
const hitAllocs = 1

func TestHitPathAllocations(t *testing.T) {
	c, _, origin := newBenchCache(t)
	r := benchRequest("/api/users/42/profile")
	if err := c.ServeHTTP(httptest.NewRecorder(), r, origin); err != nil {
		t.Fatal(err)
	}
	next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	w := &benchWriter{h: make(http.Header)}
	allocs := testing.AllocsPerRun(100, func() {
		w.reset()
		if err := c.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > hitAllocs {
		t.Fatalf("a hit allocates %.0f times, want at most %d", allocs, hitAllocs)
	}
}
