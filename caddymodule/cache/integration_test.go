package cache

// Integration tests: a real Caddy, loaded from a Caddyfile, with spark_cache
// in front of a counting httptest origin (see harness_test.go). Run with
//
//	go test -race -count=1 ./caddymodule/cache/ -run Integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var ttlRE = regexp.MustCompile(`ttl=(-?\d+)`)

// ttlOf returns the ttl= of a hit's Cache-Status, or -1<<31 when absent.
func ttlOf(r *resp) int {
	m := ttlRE.FindStringSubmatch(r.cacheStatus())
	if m == nil {
		return -1 << 31
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// serveWith returns an origin handler writing the header pairs and body.
func serveWith(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, body)
		}
	}
}

// routes dispatches by path to handlers; unknown paths get 404 no-store.
func routes(m map[string]http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.URL.Path]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "no route", http.StatusNotFound)
	}
}

func TestIntegrationMissThenHitWithAge(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, `{"id":1}`, "Cache-Control", "max-age=100"))

	r1 := e.get("/a")
	expect(t, "first", r1, 200, `{"id":1}`, false)
	if cs := r1.cacheStatus(); !strings.Contains(cs, "fwd=miss") || !strings.Contains(cs, "stored") {
		t.Errorf("first Cache-Status %q, want fwd=miss; stored", cs)
	}
	r2 := e.get("/a")
	expect(t, "second", r2, 200, `{"id":1}`, true)
	if !strings.HasPrefix(r2.cacheStatus(), "spark; hit") || !strings.Contains(r2.cacheStatus(), "l1") {
		t.Errorf("Cache-Status %q: want spark; hit naming l1", r2.cacheStatus())
	}
	age, err := strconv.Atoi(r2.header.Get("Age"))
	if err != nil || age < 0 || age > 2 {
		t.Errorf("Age %q on an immediate hit, want 0..2", r2.header.Get("Age"))
	}
	if ttl := ttlOf(r2); ttl < 97 || ttl > 100 {
		t.Errorf("ttl %d, want about 100", ttl)
	}
	if n := e.origin.hits("GET", "/a"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}

	// An origin Age is carried into the stored entry's age.
	e.origin.handle(serveWith(200, "aged", "Cache-Control", "max-age=100", "Age", "30"))
	e.get("/aged")
	r := e.get("/aged")
	expect(t, "aged hit", r, 200, "aged", true)
	if age, _ := strconv.Atoi(r.header.Get("Age")); age < 30 || age > 33 {
		t.Errorf("Age %q, want about 30", r.header.Get("Age"))
	}
	if ttl := ttlOf(r); ttl < 67 || ttl > 70 {
		t.Errorf("ttl %d, want about 70", ttl)
	}
	// Query order does not matter; ignored params (utm_*) are dropped.
	e.origin.handle(serveWith(200, "q", "Cache-Control", "max-age=100"))
	e.get("/q?b=2&a=1&utm_source=x")
	expect(t, "reordered query", e.get("/q?a=1&b=2"), 200, "q", true)
	expect(t, "other query", e.get("/q?a=1&b=3"), 200, "q", false)
}

// TestIntegrationFreshness covers what the origin's headers (and the rules)
// make storable and for how long.
func TestIntegrationFreshness(t *testing.T) {
	e := startEdge(t, "")
	future := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	cases := []struct {
		name   string
		path   string
		status int
		hdr    []string
		stored bool
		ttl    int // expected ttl of the hit, ±3; 0: don't check
	}{
		{"max-age", "/f/max-age", 200, []string{"Cache-Control", "max-age=100"}, true, 100},
		{"s-maxage over max-age", "/f/smaxage", 200, []string{"Cache-Control", "max-age=10, s-maxage=200"}, true, 200},
		{"expires", "/f/expires", 200, []string{"Expires", future(300 * time.Second)}, true, 300},
		{"max-age over expires", "/f/maxage-expires", 200, []string{"Cache-Control", "max-age=50", "Expires", future(300 * time.Second)}, true, 50},
		{"expires in the past", "/f/expired", 200, []string{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}, false, 0},
		{"invalid expires", "/f/bad-expires", 200, []string{"Expires", "0"}, false, 0},
		{"CDN-Cache-Control over Cache-Control", "/f/cdn", 200, []string{"Cache-Control", "max-age=10", "CDN-Cache-Control", "max-age=500"}, true, 500},
		{"CDN-Cache-Control lets the edge store what browsers must not", "/f/cdn-only", 200, []string{"Cache-Control", "max-age=0", "CDN-Cache-Control", "max-age=120"}, true, 120},
		{"CDN-Cache-Control no-store", "/f/cdn-nostore", 200, []string{"Cache-Control", "max-age=100", "CDN-Cache-Control", "no-store"}, false, 0},
		{"no-store", "/f/nostore", 200, []string{"Cache-Control", "no-store, max-age=100"}, false, 0},
		{"no-store under a rule ttl", "/ttl/nostore", 200, []string{"Cache-Control", "no-store"}, false, 0},
		{"no-store in Cache-Control despite CDN-Cache-Control", "/ttl/nostore-cdn", 200, []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=100"}, false, 0},
		{"rule ttl lengthens max-age", "/ttl/short", 200, []string{"Cache-Control", "max-age=5"}, true, 600},
		{"rule ttl without Cache-Control", "/ttl/none", 200, nil, true, 600},
		{"rule ttl yields to CDN-Cache-Control", "/ttl/cdn", 200, []string{"CDN-Cache-Control", "max-age=30"}, true, 30},
		{"private without a private rule", "/f/private", 200, []string{"Cache-Control", "private, max-age=100"}, false, 0},
		{"private and public conflict: private wins", "/f/pubpriv", 200, []string{"Cache-Control", "public, private, max-age=100"}, false, 0},
		{"no explicit freshness, no validator", "/f/nothing", 200, nil, false, 0},
		{"heuristic freshness from Last-Modified", "/f/heuristic", 200, []string{"Last-Modified", time.Now().Add(-1000 * time.Second).UTC().Format(http.TimeFormat)}, true, 100},
		{"404 with max-age", "/f/404", 404, []string{"Cache-Control", "max-age=100"}, true, 100},
		{"410 with max-age", "/f/410", 410, []string{"Cache-Control", "max-age=100"}, true, 100},
		{"500 never stored", "/f/500", 500, []string{"Cache-Control", "max-age=100"}, false, 0},
		{"503 never stored", "/f/503", 503, []string{"Cache-Control", "max-age=100"}, false, 0},
		{"302 with explicit freshness", "/f/302", 302, []string{"Cache-Control", "max-age=100", "Location", "/elsewhere"}, true, 100},
		{"302 without explicit freshness", "/f/302-plain", 302, []string{"Location", "/elsewhere", "Last-Modified", "Thu, 01 Jan 1970 00:00:00 GMT"}, false, 0},
		{"Set-Cookie makes it private", "/f/cookie", 200, []string{"Cache-Control", "max-age=100", "Set-Cookie", "sid=1"}, false, 0},
		{"Vary: * stored never served", "/f/vary-star", 200, []string{"Cache-Control", "max-age=100", "Vary", "*"}, false, 0},
		{"Vary: * among fields", "/f/vary-star2", 200, []string{"Cache-Control", "max-age=100", "Vary", "Accept, *"}, false, 0},
	}
	m := map[string]http.HandlerFunc{}
	for _, c := range cases {
		m[c.path] = serveWith(c.status, "body of "+c.path, c.hdr...)
	}
	e.origin.handle(routes(m))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r1 := e.get(c.path)
			expect(t, "first", r1, c.status, "body of "+c.path, false)
			r2 := e.get(c.path)
			expect(t, "second", r2, c.status, "body of "+c.path, c.stored)
			wantOrigin := 2
			if c.stored {
				wantOrigin = 1
			}
			if n := e.origin.hits("GET", c.path); n != wantOrigin {
				t.Errorf("origin saw %d requests, want %d", n, wantOrigin)
			}
			if c.stored && c.ttl > 0 {
				if ttl := ttlOf(r2); ttl < c.ttl-3 || ttl > c.ttl {
					t.Errorf("ttl %d (Cache-Status %q), want about %d", ttl, r2.cacheStatus(), c.ttl)
				}
			}
			for _, f := range []string{"Cache-Tags", "Spark-Purge"} {
				if v := r2.header.Get(f); v != "" {
					t.Errorf("%s reached the client: %q", f, v)
				}
			}
		})
	}
}

// TestIntegrationRequestDirectives covers the client's Cache-Control.
func TestIntegrationRequestDirectives(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(routes(map[string]http.HandlerFunc{
		// fresh for 100 s
		"/d/fresh": serveWith(200, "fresh", "Cache-Control", "max-age=100", "ETag", `"v1"`),
		// stale on arrival by 20 s (Age 30 > max-age 10)
		"/d/stale": serveWith(200, "stale", "Cache-Control", "max-age=10", "Age", "30", "ETag", `"v1"`),
	}))
	e.get("/d/fresh")
	e.get("/d/stale")
	cases := []struct {
		name, path, cc string
		hit            bool
		status         int
	}{
		{"plain request: fresh hit", "/d/fresh", "", true, 200},
		{"no-cache forces revalidation", "/d/fresh", "no-cache", false, 200},
		{"max-age=0 forces revalidation", "/d/fresh", "max-age=0", false, 200},
		{"max-age larger than age: hit", "/d/fresh", "max-age=50", true, 200},
		{"min-fresh within lifetime: hit", "/d/fresh", "min-fresh=10", true, 200},
		{"min-fresh beyond lifetime: origin", "/d/fresh", "min-fresh=200", false, 200},
		{"only-if-cached with an entry", "/d/fresh", "only-if-cached", true, 200},
		{"only-if-cached on a miss: 504", "/d/never-fetched", "only-if-cached", false, 504},
		{"stale entry: origin", "/d/stale", "", false, 200},
		{"max-stale covering staleness: stale served", "/d/stale", "max-stale=60", true, 200},
		{"max-stale without value: stale served", "/d/stale", "max-stale", true, 200},
		{"max-stale too small: origin", "/d/stale", "max-stale=5", false, 200},
		{"only-if-cached on a stale entry: 504", "/d/stale", "only-if-cached", false, 504},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.origin.hits("GET", c.path)
			var hdr []string
			if c.cc != "" {
				hdr = []string{"Cache-Control", c.cc}
			}
			r := e.get(c.path, hdr...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (Cache-Status %q)", r.status, c.status, r.cacheStatus())
			}
			if r.isHit() != c.hit {
				t.Errorf("Cache-Status %q, want hit=%v", r.cacheStatus(), c.hit)
			}
			wantOrigin := 1
			if c.hit || c.status == 504 {
				wantOrigin = 0
			}
			if got := e.origin.hits("GET", c.path) - before; got != wantOrigin {
				t.Errorf("origin saw %d requests, want %d", got, wantOrigin)
			}
			if c.status == 200 && r.body != strings.TrimPrefix(c.path, "/d/") {
				t.Errorf("body %q", r.body)
			}
		})
	}
	// A revalidating request sent the stored validator.
	if inm := e.origin.lastRequest("GET", "/d/fresh").Header.Get("If-None-Match"); inm != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q, want the stored ETag", inm)
	}
}

func TestIntegrationHeadFromStoredGet(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, "0123456789", "Cache-Control", "max-age=100", "ETag", `"h"`))
	r := e.do("HEAD", "/h")
	if r.status != 200 || r.body != "" || r.isHit() {
		t.Errorf("HEAD miss: %d %q %q", r.status, r.body, r.cacheStatus())
	}
	e.get("/h")
	gets := e.origin.hits("GET", "/h")
	r = e.do("HEAD", "/h")
	if r.status != 200 || r.body != "" || !r.isHit() {
		t.Errorf("HEAD after GET: %d %q %q, want an empty hit", r.status, r.body, r.cacheStatus())
	}
	if r.header.Get("Content-Length") != "10" || r.header.Get("Etag") != `"h"` {
		t.Errorf("HEAD header: Content-Length %q ETag %q", r.header.Get("Content-Length"), r.header.Get("Etag"))
	}
	if e.origin.hits("GET", "/h") != gets || e.origin.hits("HEAD", "/h") != 1 {
		t.Errorf("origin GET %d HEAD %d, want %d and 1", e.origin.hits("GET", "/h"), e.origin.hits("HEAD", "/h"), gets)
	}
	expect(t, "GET after HEAD", e.get("/h"), 200, "0123456789", true)
}

func TestIntegrationVary(t *testing.T) {
	e := startEdge(t, "")
	big := strings.Repeat("spark ", 400) // over encode's minimum length
	e.origin.handle(routes(map[string]http.HandlerFunc{
		"/v/lang": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Set("Vary", "Accept-Language")
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
		},
		"/v/enc": serveWith(200, big, "Cache-Control", "max-age=100", "Content-Type", "text/plain; charset=utf-8"),
		"/v/star": serveWith(200, "star", "Cache-Control", "max-age=100", "Vary", "*"),
	}))

	// Accept-Language: case, order and white space name the same variant.
	first := e.get("/v/lang", "Accept-Language", "en-US, fr;q=0.5")
	expect(t, "first language", first, 200, "lang=en-US, fr;q=0.5", false)
	for _, al := range []string{"en-US, fr;q=0.5", "fr;q=0.5,en-us", "  EN-us ,   FR;Q=0.5 ", "fr;q=0.5, en-US, en-us"} {
		expect(t, "Accept-Language "+al, e.get("/v/lang", "Accept-Language", al), 200, "lang=en-US, fr;q=0.5", true)
	}
	expect(t, "other language", e.get("/v/lang", "Accept-Language", "de"), 200, "lang=de", false)
	expect(t, "other language again", e.get("/v/lang", "Accept-Language", "DE"), 200, "lang=de", true)
	expect(t, "no language", e.get("/v/lang"), 200, "lang=", false)
	expect(t, "no language again", e.get("/v/lang"), 200, "lang=", true)
	if n := e.origin.hits("GET", "/v/lang"); n != 3 {
		t.Errorf("origin saw %d requests for /v/lang, want 3", n)
	}

	// Accept-Encoding is bucketed to the codings the edge serves (zstd, gzip).
	encCases := []struct {
		ae      string
		coding  string // Content-Encoding expected
		hit     bool
		variant string
	}{
		{"gzip", "gzip", false, "gzip"},
		{"gzip, deflate, br;q=0", "gzip", true, "gzip"},
		{"deflate, GZIP;q=0.8", "gzip", true, "gzip"},
		{"", "", false, "identity"},
		{"identity", "", true, "identity"},
		{"gzip;q=0, deflate", "", true, "identity"},
		{"zstd, gzip", "zstd", false, "zstd+gzip"},
		{"gzip;q=0.5, zstd", "zstd", true, "zstd+gzip"},
		{"*", "zstd", true, "zstd+gzip"},
	}
	for _, c := range encCases {
		var hdr []string
		if c.ae != "" {
			hdr = []string{"Accept-Encoding", c.ae}
		}
		r := e.get("/v/enc", hdr...)
		what := fmt.Sprintf("Accept-Encoding %q (%s)", c.ae, c.variant)
		expect(t, what, r, 200, "\x00any", c.hit)
		if got := r.header.Get("Content-Encoding"); got != c.coding {
			t.Errorf("%s: Content-Encoding %q, want %q", what, got, c.coding)
		}
		if c.coding == "" && r.body != big {
			t.Errorf("%s: identity body corrupted (%d bytes)", what, len(r.body))
		}
	}
	if n := e.origin.hits("GET", "/v/enc"); n != 3 {
		t.Errorf("origin saw %d requests for /v/enc, want 3 (one per bucket)", n)
	}

	// Vary: * is never served from the cache.
	for i := 0; i < 3; i++ {
		expect(t, "Vary: *", e.get("/v/star"), 200, "star", false)
	}
	if n := e.origin.hits("GET", "/v/star"); n != 3 {
		t.Errorf("origin saw %d requests for /v/star, want 3", n)
	}
}
