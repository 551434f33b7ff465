package cache

// Integration tests of what invalidate.go does: unsafe methods, Cache-Tags
// and Spark-Purge, and purges racing fills.

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

// TestIntegrationUnsafeMethodsInvalidate: RFC 9111 §4.4.
func TestIntegrationUnsafeMethodsInvalidate(t *testing.T) {
	e := startEdge(t, "")
	var writeStatus atomic.Int64
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Location", "/items/new")
			w.Header().Set("Content-Location", "/items/list?page=1")
			w.WriteHeader(int(writeStatus.Load()))
			return
		}
		w.Header().Set("Cache-Control", "max-age=100")
		_, _ = io.WriteString(w, "item "+r.URL.RequestURI())
	})
	targets := []string{"/items/1", "/items/new", "/items/list?page=1", "/items/other"}
	prime := func(t *testing.T) {
		for _, p := range targets {
			e.get(p)
			if !e.get(p).isHit() {
				t.Fatalf("%s not stored", p)
			}
		}
	}
	// RFC 9111 §4.4: the target URI after any non-error status, Location
	// and Content-Location after a 2xx only (a redirect's Location was not
	// changed by the request: invalidating it let anyone empty any URL by
	// making the origin redirect). A method of unknown safety is unsafe.
	cases := []struct {
		method            string
		status            int
		target, locations bool // invalidated
	}{
		{"POST", 201, true, true},
		{"PUT", 200, true, true},
		{"DELETE", 204, true, true},
		{"PATCH", 200, true, true},
		{"PURGE", 200, true, true}, // unknown safety: as unsafe
		{"LINK", 204, true, true},
		{"POST", 303, true, false},
		{"POST", 308, true, false},
		{"PURGE", 301, true, false},
		{"POST", 500, false, false},
		{"DELETE", 404, false, false},
		{"PUT", 409, false, false},
		{"OPTIONS", 200, false, false}, // safe
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %d", c.method, c.status), func(t *testing.T) {
			prime(t)
			writeStatus.Store(int64(c.status))
			r := e.do(c.method, "/items/1")
			if r.status != c.status {
				t.Fatalf("status %d", r.status)
			}
			for i, p := range targets[:3] {
				want := c.target
				if i > 0 {
					want = c.locations
				}
				if hit := e.get(p).isHit(); hit == want {
					t.Errorf("%s after %s %d: hit=%v, want invalidated=%v", p, c.method, c.status, hit, want)
				}
			}
			if !e.get("/items/other").isHit() {
				t.Errorf("unrelated /items/other invalidated")
			}
		})
	}
	// A Location on another host is not invalidated here.
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "http://elsewhere.example/items/other")
			w.WriteHeader(201)
			return
		}
		w.Header().Set("Cache-Control", "max-age=100")
		_, _ = io.WriteString(w, "item")
	})
	e.get("/items/other")
	e.do("POST", "/items/9")
	if !e.get("/items/other").isHit() {
		t.Errorf("a Location on another host invalidated a local entry")
	}
}

// TestIntegrationCacheTagsAndSparkPurge: Cache-Tags index entries and never
// reach clients; Spark-Purge on any response purges those tags.
func TestIntegrationCacheTagsAndSparkPurge(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(routes(map[string]http.HandlerFunc{
		"/users/42/profile":     serveWith(200, "profile 42", "Cache-Control", "max-age=100", "Cache-Tags", "user:42 profile:42"),
		"/users/42/photos":      serveWith(200, "photos 42", "Cache-Control", "max-age=100", "Cache-Tags", "user:42", "Cache-Tags", "photos:42"),
		"/users/77/profile":     serveWith(200, "profile 77", "Cache-Control", "max-age=100", "Cache-Tags", "user:77,profile:77"),
		"/events/moved":         serveWith(200, "ok", "Cache-Control", "no-store", "Spark-Purge", "user:42"),
		"/events/profile77":     serveWith(200, "ok", "Cache-Control", "no-store", "Spark-Purge", "profile:77, unknown:1"),
		"/events/cached-purger": serveWith(200, "ok", "Cache-Control", "max-age=100", "Spark-Purge", "photos:42"),
	}))
	all := []string{"/users/42/profile", "/users/42/photos", "/users/77/profile"}
	prime := func() {
		for _, p := range all {
			r := e.get(p)
			if r.header.Get("Cache-Tags") != "" {
				t.Errorf("%s: Cache-Tags reached the client on a miss", p)
			}
			r = e.get(p)
			if !r.isHit() || r.header.Get("Cache-Tags") != "" {
				t.Errorf("%s: hit=%v Cache-Tags %q", p, r.isHit(), r.header.Get("Cache-Tags"))
			}
		}
	}
	check := func(what string, want map[string]bool) {
		t.Helper()
		for _, p := range all {
			if got := e.get(p).isHit(); got != want[p] {
				t.Errorf("%s: %s hit=%v, want %v", what, p, got, want[p])
			}
		}
	}
	prime()
	r := e.doBody("POST", "/events/moved", []byte("{}"))
	if r.header.Get("Spark-Purge") != "" {
		t.Errorf("Spark-Purge reached the client")
	}
	check("after Spark-Purge user:42", map[string]bool{"/users/77/profile": true})

	prime()
	r = e.get("/events/profile77") // a GET response may purge too
	if r.header.Get("Spark-Purge") != "" {
		t.Errorf("Spark-Purge reached the client")
	}
	check("after Spark-Purge profile:77", map[string]bool{"/users/42/profile": true, "/users/42/photos": true})

	prime()
	e.get("/events/cached-purger")
	check("after Spark-Purge photos:42", map[string]bool{"/users/42/profile": true, "/users/77/profile": true})
	if r := e.get("/events/cached-purger"); r.header.Get("Spark-Purge") != "" {
		t.Errorf("stored Spark-Purge replayed to a client: hit=%v", r.isHit())
	}
}

// TestIntegrationPurgeDuringFill: a purge that happens while a response is
// being fetched is not undone when the fetch completes.
func TestIntegrationPurgeDuringFill(t *testing.T) {
	e := startEdge(t, "")
	var v atomic.Int64
	// The first fill is answered only after the purge has returned.
	purged := newGate(t)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		n := v.Add(1)
		if n == 1 && !purged.wait(r) {
			return
		}
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Cache-Tags", "slow")
		_, _ = fmt.Fprintf(w, "v%d", n)
	})
	done := e.getAsync("/slowfill")
	testutil.Eventually(t, 15*time.Second, "the fill to reach the origin", func() bool { return e.origin.hits("GET", "/slowfill") == 1 })
	e.purge(`{"tags":["slow"]}`)
	purged.open()
	if r := <-done; r.status != 200 || r.body != "v1" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	expect(t, "after the purge", e.get("/slowfill"), 200, "v2", false)
	expect(t, "then stored", e.get("/slowfill"), 200, "v2", true)
}
