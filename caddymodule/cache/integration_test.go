package cache

// Integration tests: a real Caddy, loaded from a Caddyfile, with spark_cache
// in front of a counting httptest origin (see harness_test.go). Run with
//
//	go test -race -count=1 ./caddymodule/cache/ -run Integration

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
		"/v/enc":  serveWith(200, big, "Cache-Control", "max-age=100", "Content-Type", "text/plain; charset=utf-8"),
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

// userOf returns the bearer token of a request, or "anonymous".
func userOf(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok
	}
	return "anonymous"
}

// TestIntegrationPrivatePerUser proves that with a private rule two users
// never receive each other's stored response: GET, HEAD, If-None-Match,
// revalidation (304), stale-while-revalidate and stale-if-error.
func TestIntegrationPrivatePerUser(t *testing.T) {
	e := startEdge(t, "")
	var mode atomicString
	mode.Store("ok")
	// perUser answers "<what> of <user>" with a per-user ETag; cc and
	// extra header pairs set its freshness.
	// cc304 is the Cache-Control of its 304s.
	perUser := func(what, cc, cc304 string, extra ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch mode.Load() {
			case "503":
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, "origin down", http.StatusServiceUnavailable)
				return
			case "abort":
				panic(http.ErrAbortHandler)
			}
			u := userOf(r)
			etag := `"` + what + "-" + u + `"`
			w.Header().Set("Cache-Control", cc)
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Type", "application/json")
			if r.Header.Get("If-None-Match") == etag {
				w.Header().Set("Cache-Control", cc304)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			for i := 0; i+1 < len(extra); i += 2 {
				w.Header().Set(extra[i], extra[i+1])
			}
			_, _ = io.WriteString(w, what+" of "+u)
		}
	}
	e.origin.handle(routes(map[string]http.HandlerFunc{
		"/me": perUser("me", "private, max-age=100", "private, max-age=100"),
		// stale on arrival, and still stale after a 304 (max-age=0)
		"/me/stale":     perUser("stale", "private, max-age=10, stale-if-error=600", "private, max-age=0, stale-if-error=600", "Age", "30"),
		"/me/swr":       perUser("swr", "private, max-age=10, stale-while-revalidate=600", "private, max-age=100", "Age", "30"),
		"/me/varyauth":  perUser("va", "max-age=100", "max-age=100", "Vary", "Authorization"),
		"/suggestions":  perUser("sugg", "max-age=100", "max-age=100"),
		"/notprivate/x": perUser("np", "private, max-age=100", "private, max-age=100"),
	}))
	alice := []string{"Authorization", "Bearer alice"}
	bob := []string{"Authorization", "Bearer bob"}
	with := func(u []string, more ...string) []string { return append(append([]string(nil), u...), more...) }

	// GET: each user fills and then hits their own entry.
	expect(t, "alice miss", e.get("/me", alice...), 200, "me of alice", false)
	expect(t, "bob miss", e.get("/me", bob...), 200, "me of bob", false)
	expect(t, "alice hit", e.get("/me", alice...), 200, "me of alice", true)
	expect(t, "bob hit", e.get("/me", bob...), 200, "me of bob", true)
	expect(t, "bob, token with other case", e.get("/me", "Authorization", "Bearer BOB"), 200, "me of BOB", false)
	expect(t, "anonymous never gets a private entry", e.get("/me"), 200, "me of anonymous", false)
	expect(t, "anonymous again (private, not stored)", e.get("/me"), 200, "me of anonymous", false)
	if n := e.origin.hits("GET", "/me"); n != 5 {
		t.Errorf("origin saw %d GET /me, want 5", n)
	}

	// HEAD answered from each user's own entry.
	for _, u := range []struct {
		name string
		hdr  []string
	}{{"alice", alice}, {"bob", bob}} {
		r := e.do("HEAD", "/me", u.hdr...)
		if r.status != 200 || !r.isHit() || r.header.Get("Etag") != `"me-`+u.name+`"` {
			t.Errorf("HEAD as %s: %d %q ETag %q", u.name, r.status, r.cacheStatus(), r.header.Get("Etag"))
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len("me of "+u.name)) {
			t.Errorf("HEAD as %s: Content-Length %q is not that of the user's body", u.name, cl)
		}
	}
	if r := e.do("HEAD", "/me", "Authorization", "Bearer carol"); r.isHit() {
		t.Errorf("HEAD as carol was a hit: %q", r.cacheStatus())
	}

	// If-None-Match: only the user's own validator matches.
	r := e.get("/me", with(bob, "If-None-Match", `"me-alice"`)...)
	expect(t, "bob with alice's ETag", r, 200, "me of bob", true)
	r = e.get("/me", with(bob, "If-None-Match", "*")...)
	expect(t, "bob with *", r, 304, "", true)
	if r.header.Get("Etag") != `"me-bob"` {
		t.Errorf("304 to bob carries ETag %q", r.header.Get("Etag"))
	}
	expect(t, "alice with her ETag", e.get("/me", with(alice, "If-None-Match", `"me-alice"`)...), 304, "", true)
	expect(t, "alice with bob's ETag", e.get("/me", with(alice, "If-None-Match", `"me-bob"`)...), 200, "me of alice", true)
	r = e.get("/me", "Authorization", "Bearer carol", "If-None-Match", `"me-alice"`)
	expect(t, "carol with alice's ETag", r, 200, "me of carol", false)

	// Vary: Authorization and the rule's vary Authorization key per user too.
	for _, p := range []string{"/me/varyauth", "/suggestions"} {
		what := map[string]string{"/me/varyauth": "va", "/suggestions": "sugg"}[p]
		expect(t, p+" alice", e.get(p, alice...), 200, what+" of alice", false)
		expect(t, p+" bob", e.get(p, bob...), 200, what+" of bob", false)
		expect(t, p+" alice hit", e.get(p, alice...), 200, what+" of alice", true)
		expect(t, p+" bob hit", e.get(p, bob...), 200, what+" of bob", true)
		if p == "/suggestions" { // the rule adds Location to the Vary list
			expect(t, p+" bob in another Location", e.get(p, with(bob, "Location", "48.85,2.35")...), 200, what+" of bob", false)
			expect(t, p+" bob there again", e.get(p, with(bob, "Location", "48.85,2.35")...), 200, what+" of bob", true)
		}
		expect(t, p+" anonymous", e.get(p), 200, what+" of anonymous", false)
	}
	// Without a private rule a private response is not stored at all.
	e.get("/notprivate/x", alice...)
	expect(t, "private without a rule", e.get("/notprivate/x", alice...), 200, "np of alice", false)

	// Stale entries revalidated per user: the origin sees the user's own
	// credential and validator, answers 304, and each gets their own body.
	expect(t, "alice stale fill", e.get("/me/stale", alice...), 200, "stale of alice", false)
	expect(t, "bob stale fill", e.get("/me/stale", bob...), 200, "stale of bob", false)
	for _, u := range []struct {
		name string
		hdr  []string
	}{{"alice", alice}, {"bob", bob}, {"alice", alice}} {
		r := e.get("/me/stale", u.hdr...)
		expect(t, u.name+" revalidated", r, 200, "stale of "+u.name, false)
		if !strings.Contains(r.cacheStatus(), "fwd-status=304") {
			t.Errorf("%s: Cache-Status %q, want a 304 revalidation", u.name, r.cacheStatus())
		}
		last := e.origin.lastRequest("GET", "/me/stale")
		if got := last.Header.Get("If-None-Match"); got != `"stale-`+u.name+`"` {
			t.Errorf("%s: revalidation sent If-None-Match %q", u.name, got)
		}
		if got := userOf(last); got != u.name {
			t.Errorf("%s: revalidation sent credential of %q", u.name, got)
		}
	}
	// Revalidation answering a client's conditional request per user.
	expect(t, "bob conditional on stale entry", e.get("/me/stale", with(bob, "If-None-Match", `"stale-bob"`)...), 304, "", false)
	expect(t, "alice conditional with bob's tag", e.get("/me/stale", with(alice, "If-None-Match", `"stale-bob"`)...), 200, "stale of alice", false)
	// HEAD on a stale private entry.
	if r := e.do("HEAD", "/me/stale", bob...); r.status != 200 || r.header.Get("Etag") != `"stale-bob"` || r.body != "" {
		t.Errorf("HEAD stale as bob: %d ETag %q body %q", r.status, r.header.Get("Etag"), r.body)
	}
	// stale-if-error per user, with a 503 and with a broken connection.
	for _, m := range []string{"503", "abort"} {
		mode.Store(m)
		expect(t, "alice stale-if-error "+m, e.get("/me/stale", alice...), 200, "stale of alice", false)
		expect(t, "bob stale-if-error "+m, e.get("/me/stale", bob...), 200, "stale of bob", false)
		r := e.get("/me/stale", "Authorization", "Bearer carol")
		if r.status == 200 || strings.Contains(r.body, "alice") || strings.Contains(r.body, "bob") {
			t.Errorf("carol during origin failure (%s): %d %q", m, r.status, r.body)
		}
		r = e.get("/me/stale")
		if r.status == 200 || strings.Contains(r.body, "alice") || strings.Contains(r.body, "bob") {
			t.Errorf("anonymous during origin failure (%s): %d %q", m, r.status, r.body)
		}
	}
	mode.Store("ok")

	// stale-while-revalidate per user.
	expect(t, "alice swr fill", e.get("/me/swr", alice...), 200, "swr of alice", false)
	expect(t, "bob swr fill", e.get("/me/swr", bob...), 200, "swr of bob", false)
	for i := 0; i < 3; i++ {
		r := e.get("/me/swr", alice...)
		expect(t, "alice swr", r, 200, "swr of alice", true)
		r = e.get("/me/swr", bob...)
		expect(t, "bob swr", r, 200, "swr of bob", true)
		if r := e.get("/me/swr", "Authorization", "Bearer carol"); r.body != "swr of carol" {
			t.Errorf("carol on swr: %q", r.body)
		}
	}
	// The background refreshes (304s with max-age=100) make each user's own
	// entry fresh.
	for _, u := range []struct {
		name string
		hdr  []string
	}{{"alice", alice}, {"bob", bob}} {
		eventually(t, 15*time.Second, u.name+"'s background refresh", func() bool {
			r := e.get("/me/swr", u.hdr...)
			if r.body != "swr of "+u.name {
				t.Fatalf("%s got %q", u.name, r.body)
			}
			return r.isHit() && !strings.Contains(r.cacheStatus(), "stale")
		})
	}
}

// atomicString is a string shared between a test and its origin.
type atomicString struct {
	mu sync.Mutex
	s  string
}

func (a *atomicString) Load() string   { a.mu.Lock(); defer a.mu.Unlock(); return a.s }
func (a *atomicString) Store(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }

// TestIntegrationAuthorizationAndSharedEntries: RFC 9111 §3.5.
func TestIntegrationAuthorizationAndSharedEntries(t *testing.T) {
	e := startEdge(t, "")
	cases := []struct {
		path, cc string
		authHit  bool
	}{
		{"/s/plain", "max-age=100", false},
		{"/s/public", "public, max-age=100", true},
		{"/s/smaxage", "s-maxage=100", true},
		{"/s/mustrevalidate", "max-age=100, must-revalidate", true},
	}
	m := map[string]http.HandlerFunc{}
	for _, c := range cases {
		c := c
		m[c.path] = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", c.cc)
			_, _ = io.WriteString(w, c.path+" for "+userOf(r))
		}
	}
	e.origin.handle(routes(m))
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			expect(t, "anonymous fill", e.get(c.path), 200, c.path+" for anonymous", false)
			expect(t, "anonymous hit", e.get(c.path), 200, c.path+" for anonymous", true)
			r := e.get(c.path, "Authorization", "Bearer dave")
			if c.authHit {
				expect(t, "authorized", r, 200, c.path+" for anonymous", true)
			} else {
				expect(t, "authorized", r, 200, c.path+" for dave", false)
				// The authorized response was not stored for everyone.
				expect(t, "anonymous after", e.get(c.path), 200, c.path+" for anonymous", true)
			}
		})
	}
}

// TestIntegrationConditionalFromFreshEntry: If-None-Match/If-Modified-Since
// answered with 304 from a fresh entry, without the origin.
func TestIntegrationConditionalFromFreshEntry(t *testing.T) {
	e := startEdge(t, "")
	lm := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	e.origin.handle(serveWith(200, "conditional", "Cache-Control", "max-age=100", "ETag", `"c1"`, "Last-Modified", lm.Format(http.TimeFormat)))
	e.get("/c")
	cases := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"matching If-None-Match", []string{"If-None-Match", `"c1"`}, 304},
		{"weak If-None-Match", []string{"If-None-Match", `W/"c1"`}, 304},
		{"list If-None-Match", []string{"If-None-Match", `"x", "c1"`}, 304},
		{"star If-None-Match", []string{"If-None-Match", `*`}, 304},
		{"other If-None-Match", []string{"If-None-Match", `"c2"`}, 200},
		{"If-Modified-Since equal", []string{"If-Modified-Since", lm.Format(http.TimeFormat)}, 304},
		{"If-Modified-Since later", []string{"If-Modified-Since", lm.Add(time.Minute).Format(http.TimeFormat)}, 304},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", lm.Add(-time.Minute).Format(http.TimeFormat)}, 200},
		{"If-Modified-Since junk", []string{"If-Modified-Since", "yesterday"}, 200},
		{"If-None-Match wins over If-Modified-Since", []string{"If-None-Match", `"c2"`, "If-Modified-Since", lm.Format(http.TimeFormat)}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.get("/c", c.hdr...)
			body := "conditional"
			if c.status == 304 {
				body = ""
				if r.header.Get("Etag") != `"c1"` {
					t.Errorf("304 without the ETag: %q", r.header.Get("Etag"))
				}
			}
			expect(t, c.name, r, c.status, body, true)
		})
	}
	if n := e.origin.hits("GET", "/c"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestIntegrationRevalidation: a stale entry is revalidated with its stored
// validators; a 304 refreshes it, a 200 replaces it.
func TestIntegrationRevalidation(t *testing.T) {
	e := startEdge(t, "")
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	var version atomicString
	version.Store("1")
	// First answer: stale on arrival (Age 30 > max-age 10). A conditional
	// request whose validator matches gets 304 with a new lifetime.
	validated := func(w http.ResponseWriter, r *http.Request) {
		etag := `"rv` + version.Load() + `"`
		if r.Header.Get("If-None-Match") == etag || r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Modified-Since") == lm && r.URL.Path == "/rv/lm" {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Set("X-Refreshed", "yes")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Age", "30")
		if r.URL.Path == "/rv/lm" {
			w.Header().Set("Last-Modified", lm)
		} else {
			w.Header().Set("ETag", etag)
		}
		_, _ = io.WriteString(w, "version "+version.Load())
	}
	e.origin.handle(validated)

	for _, p := range []string{"/rv/etag", "/rv/lm"} {
		t.Run(p, func(t *testing.T) {
			expect(t, "fill", e.get(p), 200, "version 1", false)
			r := e.get(p)
			expect(t, "revalidated", r, 200, "version 1", false)
			if !strings.Contains(r.cacheStatus(), "fwd-status=304") {
				t.Errorf("Cache-Status %q, want fwd-status=304", r.cacheStatus())
			}
			last := e.origin.lastRequest("GET", p)
			if p == "/rv/etag" && last.Header.Get("If-None-Match") != `"rv1"` {
				t.Errorf("revalidation If-None-Match %q", last.Header.Get("If-None-Match"))
			}
			if p == "/rv/lm" && last.Header.Get("If-Modified-Since") != lm {
				t.Errorf("revalidation If-Modified-Since %q, want %q", last.Header.Get("If-Modified-Since"), lm)
			}
			if r.header.Get("X-Refreshed") != "yes" {
				t.Errorf("304's header fields not merged into the response")
			}
			r = e.get(p)
			expect(t, "hit after the 304", r, 200, "version 1", true)
			if ttl := ttlOf(r); ttl < 97 {
				t.Errorf("refreshed ttl %d, want about 100", ttl)
			}
			if n := e.origin.hits("GET", p); n != 2 {
				t.Errorf("origin saw %d requests, want 2", n)
			}
		})
	}
	// A changed resource: the revalidation gets a 200 that replaces the entry.
	e.get("/rv/changed")
	version.Store("2")
	expect(t, "changed", e.get("/rv/changed"), 200, "version 2", false)
	expect(t, "changed, again (stale on arrival, revalidated)", e.get("/rv/changed"), 200, "version 2", false)
	expect(t, "changed, now refreshed", e.get("/rv/changed"), 200, "version 2", true)
}

// TestIntegrationGeneratedETag: a rule with etag adds a strong ETag, a hash
// of the body, and answers conditional requests with it.
func TestIntegrationGeneratedETag(t *testing.T) {
	e := startEdge(t, "")
	big := strings.Repeat("0123456789abcdef", 1024) // 16 KiB, streamed without Content-Length
	e.origin.handle(routes(map[string]http.HandlerFunc{
		"/etag/a":   serveWith(200, `{"a":1}`),
		"/etag/b":   serveWith(200, `{"b":2}`),
		"/etag/own": serveWith(200, `{"own":1}`, "ETag", `"origin-tag"`),
		"/etag/big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			for i := 0; i < 4; i++ {
				_, _ = io.WriteString(w, big[i*len(big)/4:(i+1)*len(big)/4])
				w.(http.Flusher).Flush()
			}
		},
	}))
	r1 := e.get("/etag/a")
	expect(t, "miss", r1, 200, `{"a":1}`, false)
	tag := r1.header.Get("Etag")
	if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 10 {
		t.Fatalf("generated ETag %q is not a strong entity tag", tag)
	}
	r2 := e.get("/etag/a")
	expect(t, "hit", r2, 200, `{"a":1}`, true)
	if r2.header.Get("Etag") != tag {
		t.Errorf("hit ETag %q, want %q", r2.header.Get("Etag"), tag)
	}
	expect(t, "conditional", e.get("/etag/a", "If-None-Match", tag), 304, "", true)
	if other := e.get("/etag/b").header.Get("Etag"); other == tag || other == "" {
		t.Errorf("different bodies, ETags %q and %q", tag, other)
	}
	if got := e.get("/etag/own").header.Get("Etag"); got != `"origin-tag"` {
		t.Errorf("origin's own ETag replaced: %q", got)
	}
	rb := e.get("/etag/big")
	expect(t, "big miss", rb, 200, big, false)
	rb2 := e.get("/etag/big")
	expect(t, "big hit", rb2, 200, big, true)
	if rb2.header.Get("Etag") == "" {
		t.Errorf("streamed body stored without a generated ETag")
	}
}

// TestIntegrationStaleWhileRevalidate: a stale entry within its
// stale-while-revalidate window is served at once while one background
// request refreshes it.
func TestIntegrationStaleWhileRevalidate(t *testing.T) {
	e := startEdge(t, "")
	var n atomic.Int64
	// The refresh does not answer until every stale response has arrived:
	// a client that waited for it would never get one.
	refreshing, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseRefresh := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseRefresh()
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		if v == 1 {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=30")
		} else {
			if v == 2 {
				close(refreshing)
			}
			select { // the refresh is slow: clients must not wait for it
			case <-release:
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Cache-Control", "max-age=60")
		}
		_, _ = fmt.Fprintf(w, "v%d", v)
	})
	expect(t, "fill", e.get("/swr"), 200, "v1", false)
	time.Sleep(2100 * time.Millisecond) // max-age=1 has passed
	var wg sync.WaitGroup
	results := make([]*resp, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.get("/swr")
		}()
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		releaseRefresh()
		<-all
		t.Fatal("stale responses did not arrive while the refresh was held: clients waited for the refresh")
	}
	select {
	case <-refreshing:
	case <-time.After(10 * time.Second):
		t.Fatal("no background refresh reached the origin")
	}
	releaseRefresh()
	for i, r := range results {
		expect(t, fmt.Sprintf("stale #%d", i), r, 200, "v1", true)
		if !strings.Contains(r.cacheStatus(), "stale-while-revalidate") {
			t.Errorf("stale #%d: Cache-Status %q", i, r.cacheStatus())
		}
		if age, _ := strconv.Atoi(r.header.Get("Age")); age < 2 {
			t.Errorf("stale #%d: Age %q, want at least 2", i, r.header.Get("Age"))
		}
	}
	eventually(t, 15*time.Second, "the background refresh", func() bool {
		return e.get("/swr").body == "v2"
	})
	r := e.get("/swr")
	expect(t, "refreshed", r, 200, "v2", true)
	if got := e.origin.hits("GET", "/swr"); got != 2 {
		t.Errorf("origin saw %d requests, want 2 (fill + exactly one refresh)", got)
	}

	// The rule default applies to responses that state no window and were
	// fresh when they arrived (Age 9 < max-age 10: stale a second later).
	var m atomic.Int64
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := m.Add(1)
		w.Header().Set("Cache-Control", "max-age=10")
		if v == 1 {
			w.Header().Set("Age", "9")
		}
		_, _ = fmt.Fprintf(w, "r%d", v)
	})
	e.get("/swr-rule/x")
	time.Sleep(1100 * time.Millisecond)
	r = e.get("/swr-rule/x")
	expect(t, "rule swr", r, 200, "r1", true)
	eventually(t, 15*time.Second, "the rule's background refresh", func() bool {
		return e.get("/swr-rule/x").body == "r2"
	})
	if got := e.origin.hits("GET", "/swr-rule/x"); got != 2 {
		t.Errorf("origin saw %d requests, want 2", got)
	}
}

// TestIntegrationStaleIfError: stale entries served when the origin fails
// (5xx, broken connection, closed), within stale-if-error.
func TestIntegrationStaleIfError(t *testing.T) {
	e := startEdge(t, "")
	var mode atomicString
	mode.Store("ok")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "503":
			w.Header().Set("Cache-Control", "max-age=100") // a 503 is never stored anyway
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		case "abort":
			panic(http.ErrAbortHandler)
		}
		// Stale on arrival: Age 30 > max-age 10.
		w.Header().Set("Age", "30")
		switch r.URL.Path {
		case "/sie/yes":
			w.Header().Set("Cache-Control", "max-age=10, stale-if-error=600")
		case "/sie/expired":
			w.Header().Set("Cache-Control", "max-age=10, stale-if-error=5")
		case "/sie/must-revalidate":
			w.Header().Set("Cache-Control", "max-age=10, must-revalidate, stale-if-error=600")
		case "/sie-rule/x":
			// Fresh on arrival, stale a second later: the rule's default
			// window applies only to responses fresh when they came (not to
			// /sie-rule/stale-on-arrival).
			w.Header().Set("Age", "9")
			w.Header().Set("Cache-Control", "max-age=10")
		default:
			w.Header().Set("Cache-Control", "max-age=10")
		}
		_, _ = io.WriteString(w, "good "+r.URL.Path)
	})
	paths := []struct {
		path  string
		stale bool // served stale on failure
	}{
		{"/sie/yes", true},
		{"/sie-rule/x", true},
		{"/sie-rule/stale-on-arrival", false},
		{"/sie/none", false},
		{"/sie/expired", false},
		{"/sie/must-revalidate", false},
	}
	for _, p := range paths {
		expect(t, "fill "+p.path, e.get(p.path), 200, "good "+p.path, false)
	}
	time.Sleep(1100 * time.Millisecond) // /sie-rule/x turns stale
	for _, m := range []string{"503", "abort", "closed"} {
		if m == "closed" {
			e.origin.srv.Close()
		} else {
			mode.Store(m)
		}
		for _, p := range paths {
			r := e.get(p.path)
			what := m + " " + p.path
			if p.stale {
				expect(t, what, r, 200, "good "+p.path, false)
				if cs := r.cacheStatus(); !strings.Contains(cs, "stale-if-error") {
					t.Errorf("%s: Cache-Status %q", what, cs)
				}
				if m == "503" && !strings.Contains(r.cacheStatus(), "fwd-status=503") {
					t.Errorf("%s: Cache-Status %q lacks fwd-status=503", what, r.cacheStatus())
				}
				continue
			}
			want := 503
			if m != "503" {
				want = 502
			}
			if r.status != want || strings.Contains(r.body, "good") {
				t.Errorf("%s: %d %q (Cache-Status %q), want %d", what, r.status, r.body, r.cacheStatus(), want)
			}
		}
		// A failure is never stored: never-fetched paths get the error.
		if r := e.get("/sie/never-" + m); r.status < 500 {
			t.Errorf("%s: never-fetched path: %d", m, r.status)
		}
	}
}

// TestIntegrationCoalescing: 100 concurrent clients on a cold key make one
// origin request.
func TestIntegrationCoalescing(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "coalesced "+r.URL.RawQuery)
	})
	const clients = 100
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*resp, clients)
	errs := make([]error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := e.client.Get(e.site + "/cold?k=1")
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			errs[i] = err
			results[i] = &resp{status: res.StatusCode, header: res.Header, body: string(b)}
		}()
	}
	close(start)
	wg.Wait()
	hits := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if r.status != 200 || r.body != "coalesced k=1" {
			t.Errorf("client %d: %d %q", i, r.status, r.body)
		}
		if r.isHit() {
			hits++
		}
	}
	if n := e.origin.hits("GET", "/cold"); n != 1 {
		t.Errorf("origin saw %d requests from %d concurrent clients, want 1", n, clients)
	}
	if hits != clients-1 {
		t.Errorf("%d coalesced hits, want %d", hits, clients-1)
	}
}

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

// TestIntegrationAdminPurge: POST /spark/purge on the admin API.
func TestIntegrationAdminPurge(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		if strings.HasPrefix(r.URL.Path, "/p/") {
			w.Header().Set("Cache-Tags", "group:p")
		}
		_, _ = io.WriteString(w, "purgeable "+r.URL.RequestURI())
	})
	paths := []string{"/p/a", "/p/b?x=1&y=2", "/p/c", "/q/a", "/q/b"}
	prime := func() {
		for _, p := range paths {
			e.get(p)
		}
	}
	hits := func() map[string]bool {
		m := map[string]bool{}
		for _, p := range paths {
			m[p] = e.get(p).isHit()
		}
		return m
	}
	cases := []struct {
		body    string
		removed int
		gone    []string
	}{
		{`{"keys":["/p/a"]}`, 1, []string{"/p/a"}},
		{`{"keys":["/p/b?y=2&x=1", "http://any.host/q/a"]}`, 2, []string{"/p/b?x=1&y=2", "/q/a"}},
		{`{"keys":["/never/stored"]}`, 0, nil},
		{`{"tags":["group:p"]}`, 3, []string{"/p/a", "/p/b?x=1&y=2", "/p/c"}},
		{`{"tags":["nope"]}`, 0, nil},
		{`{"prefix":"/q"}`, 2, []string{"/q/a", "/q/b"}},
		{`{"prefix":"/"}`, 5, paths},
		{`{"keys":["/q/a"],"tags":["group:p"]}`, 4, []string{"/q/a", "/p/a", "/p/b?x=1&y=2", "/p/c"}},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			prime()
			for p, hit := range hits() {
				if !hit {
					t.Fatalf("%s not stored before the purge", p)
				}
			}
			if n := e.purge(c.body); n != c.removed {
				t.Errorf("removed %d, want %d", n, c.removed)
			}
			for p, hit := range hits() {
				if hit == slicesContains(c.gone, p) {
					t.Errorf("%s: hit=%v after purge", p, hit)
				}
			}
		})
	}

	prime()
	refused := []struct {
		name, method, token, body string
		status                    int
	}{
		{"no token", "POST", "", `{"prefix":"/"}`, 401},
		{"wrong token", "POST", "wrong", `{"prefix":"/"}`, 401},
		{"token prefix", "POST", testPurgeToken[:5], `{"prefix":"/"}`, 401},
		{"empty body", "POST", testPurgeToken, ``, 400},
		{"not JSON", "POST", testPurgeToken, `purge everything`, 400},
		{"empty object", "POST", testPurgeToken, `{}`, 400},
		{"unknown field", "POST", testPurgeToken, `{"all":true}`, 400},
		{"wrong types", "POST", testPurgeToken, `{"keys":"/p/a"}`, 400},
		{"relative prefix", "POST", testPurgeToken, `{"prefix":"p"}`, 400},
		{"key without path", "POST", testPurgeToken, `{"keys":["p/a"]}`, 400},
		{"bad tag", "POST", testPurgeToken, `{"tags":["a b"]}`, 400},
		{"empty tag", "POST", testPurgeToken, `{"tags":[""]}`, 400},
		{"trailing data", "POST", testPurgeToken, `{"prefix":"/"} {"prefix":"/"}`, 400},
		{"array", "POST", testPurgeToken, `["/p/a"]`, 400},
		{"huge", "POST", testPurgeToken, `{"keys":["/` + strings.Repeat("a", 2<<20) + `"]}`, 400},
		{"GET", "GET", testPurgeToken, ``, 405},
	}
	for _, c := range refused {
		t.Run("refused "+c.name, func(t *testing.T) {
			r := e.adminDo(c.method, "/spark/purge", c.token, c.body)
			if r.status != c.status {
				t.Errorf("status %d, want %d: %.200s", r.status, c.status, r.body)
			}
			if c.status == 401 && r.header.Get("Www-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	for p, hit := range hits() {
		if !hit {
			t.Errorf("%s removed by a refused purge", p)
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestIntegrationMaxEntrySize: responses over max_entry_size stream through
// complete and uncached; smaller ones are stored.
func TestIntegrationMaxEntrySize(t *testing.T) {
	e := startEdge(t, "") // max_entry_size 64KiB
	body := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%08d\n", i)
		}
		return b.String()[:n]
	}
	small, large := body(16<<10), body(200<<10)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		b := large
		if strings.HasSuffix(r.URL.Path, "/small") {
			b = small
		}
		if strings.HasPrefix(r.URL.Path, "/cl/") {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			_, _ = io.WriteString(w, b)
			return
		}
		// Streamed in chunks without Content-Length.
		for i := 0; i < len(b); i += 8 << 10 {
			_, _ = io.WriteString(w, b[i:min(i+8<<10, len(b))])
			w.(http.Flusher).Flush()
		}
	})
	for _, p := range []string{"/cl/large", "/chunked/large", "/etag/large"} {
		for i := 0; i < 2; i++ {
			r := e.get(p)
			expect(t, fmt.Sprintf("%s #%d", p, i), r, 200, large, false)
			if p == "/cl/large" && strings.Contains(r.cacheStatus(), "stored") {
				t.Errorf("%s: Cache-Status %q claims a response over max_entry_size was stored", p, r.cacheStatus())
			}
		}
		if n := e.origin.hits("GET", p); n != 2 {
			t.Errorf("%s: origin saw %d requests, want 2", p, n)
		}
	}
	for _, p := range []string{"/cl/small", "/chunked/small", "/etag/small"} {
		expect(t, p+" miss", e.get(p), 200, small, false)
		expect(t, p+" hit", e.get(p), 200, small, true)
	}
}

// TestIntegrationEventStreamPassesThrough: server-sent events are flushed to
// the client as they come and never stored.
func TestIntegrationEventStreamPassesThrough(t *testing.T) {
	e := startEdge(t, "")
	release := make(chan struct{})
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "max-age=100") // tempting, but a stream
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(30 * time.Second): // well past the client's wait below
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	req, _ := http.NewRequestWithContext(ctxTimeout(t, 60*time.Second), "GET", e.site+"/events", nil)
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if cs := res.Header.Get("Cache-Status"); strings.Contains(cs, "stored") || strings.Contains(cs, "hit") {
		t.Errorf("event stream Cache-Status %q", cs)
	}
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, len("data: one\n\n"))
		_, err := io.ReadFull(res.Body, buf)
		if err != nil {
			first <- "error: " + err.Error()
			return
		}
		first <- string(buf)
	}()
	select {
	case got := <-first:
		if got != "data: one\n\n" {
			t.Fatalf("first event %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first event not flushed to the client while the stream is open")
	}
	close(release)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "data: two\n\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}
	r := e.get("/events")
	expect(t, "second stream", r, 200, "data: one\n\ndata: two\n\n", false)
	if n := e.origin.hits("GET", "/events"); n != 2 {
		t.Errorf("origin saw %d requests, want 2: an event stream was stored", n)
	}
}

// TestIntegrationEarlyHints: a 103 from the origin reaches the client, on a
// miss, before the final response.
func TestIntegrationEarlyHints(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>hinted</html>")
	})
	var mu sync.Mutex
	var codes []int
	var links []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		codes = append(codes, code)
		links = append(links, h.Get("Link"))
		return nil
	}}
	req, _ := http.NewRequest("GET", e.site+"/hinted", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	r := e.send(req)
	expect(t, "final response", r, 200, "<html>hinted</html>", false)
	mu.Lock()
	defer mu.Unlock()
	if len(codes) != 1 || codes[0] != 103 || links[0] != "</app.css>; rel=preload; as=style" {
		t.Errorf("interim responses %v with Link %q, want one 103 with the Link", codes, links)
	}
	expect(t, "stored", e.get("/hinted"), 200, "<html>hinted</html>", true)
}

// TestIntegrationRangeBypassed: Range requests go to the origin and never
// poison the stored full response.
func TestIntegrationRangeBypassed(t *testing.T) {
	e := startEdge(t, "")
	content := "0123456789abcdefghij"
	mod := time.Now().Add(-time.Hour)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"r1"`)
		http.ServeContent(w, r, "", mod, strings.NewReader(content))
	})
	r := e.get("/range", "Range", "bytes=0-3")
	if r.status != 206 || r.body != "0123" || !strings.Contains(r.cacheStatus(), "bypass") {
		t.Errorf("cold range: %d %q %q", r.status, r.body, r.cacheStatus())
	}
	expect(t, "full after range", e.get("/range"), 200, content, false)
	expect(t, "full hit", e.get("/range"), 200, content, true)
	r = e.get("/range", "Range", "bytes=4-7")
	if r.status != 206 || r.body != "4567" || r.isHit() {
		t.Errorf("warm range: %d %q %q", r.status, r.body, r.cacheStatus())
	}
	r = e.get("/range", "Range", "bytes=junk")
	if r.isHit() || r.status >= 500 {
		t.Errorf("junk range: %d %q", r.status, r.cacheStatus())
	}
	expect(t, "full hit after ranges", e.get("/range"), 200, content, true)
	if n := e.origin.hits("GET", "/range"); n != 4 {
		t.Errorf("origin saw %d requests, want 4", n)
	}
}

// TestIntegrationReloadKeepsEntries: a config reload with the same cache keeps
// the stored entries and tag index, switches the purge token, and drops no
// in-flight request.
func TestIntegrationReloadKeepsEntries(t *testing.T) {
	e := startEdge(t, "")
	// /slow is answered only once the reload has returned: it is in flight
	// across the reload whatever the machine's speed.
	slowArrived, reloaded := make(chan struct{}, 1), make(chan struct{})
	var reloadedOnce sync.Once
	endReload := func() { reloadedOnce.Do(func() { close(reloaded) }) }
	defer endReload()
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowArrived <- struct{}{}
			select {
			case <-reloaded:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Cache-Tags", "reload")
		_, _ = io.WriteString(w, "kept "+r.URL.Path)
	})
	e.get("/kept")
	e.get("/kept2")
	expect(t, "before reload", e.get("/kept"), 200, "kept /kept", true)

	inflight := make(chan *resp, 1)
	go func() {
		res, err := e.client.Get(e.site + "/slow")
		if err != nil {
			inflight <- &resp{status: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		inflight <- &resp{status: res.StatusCode, body: string(b)}
	}()
	select {
	case <-slowArrived:
	case r := <-inflight:
		t.Fatalf("request meant to be in flight during the reload ended first: %d %q", r.status, r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("the request meant to be in flight during the reload never reached the origin")
	}

	block := strings.Replace(defaultCacheBlock, "purge_token "+testPurgeToken, "purge_token rotated-token", 1)
	block = strings.Replace(block, "rule /ttl/* {", "rule /added/* {\n\t\t\tttl 1m\n\t\t}\n\t\trule /ttl/* {", 1)
	e.reload(block)
	endReload()

	if r := <-inflight; r.status != 200 || r.body != "kept /slow" {
		t.Errorf("request in flight during the reload: %d %q", r.status, r.body)
	}
	expect(t, "after reload", e.get("/kept"), 200, "kept /kept", true)
	if n := e.origin.hits("GET", "/kept"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	if m := e.adminDo("GET", "/metrics", "", ""); !regexp.MustCompile(`spark_cache_requests_total\{cache="default",layer="l1",result="hit"\} [2-9]`).MatchString(m.body) {
		t.Errorf("hit counter not carried over the reload")
	}
	if r := e.adminDo("POST", "/spark/purge", testPurgeToken, `{"tags":["reload"]}`); r.status != 401 {
		t.Errorf("old purge token after reload: %d", r.status)
	}
	r := e.adminDo("POST", "/spark/purge", "rotated-token", `{"tags":["reload"]}`)
	if r.status != 200 || !strings.Contains(r.body, `"removed":3`) {
		t.Errorf("purge by a tag indexed before the reload: %d %s", r.status, r.body)
	}
	expect(t, "purged after reload", e.get("/kept2"), 200, "kept /kept2", false)
}

// TestIntegrationMetrics: the cache's metrics are on the admin /metrics.
func TestIntegrationMetrics(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, "m", "Cache-Control", "max-age=100"))
	e.get("/m")
	e.get("/m")
	e.get("/m")
	e.do("POST", "/elsewhere")
	r := e.adminDo("GET", "/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	for _, want := range []string{
		`spark_cache_requests_total{cache="default",layer="l1",result="hit"} 2`,
		`spark_cache_requests_total{cache="default",layer="origin",result="miss"} 1`,
		`spark_cache_requests_total{cache="default",layer="origin",result="bypass"} 1`,
		`spark_cache_entries{cache="default"}`,
		`spark_cache_bytes{cache="default"}`,
		`spark_cache_origin_fetch_seconds_count{cache="default"} 1`,
		`spark_cache_purged_entries_total{cache="default"}`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !regexp.MustCompile(`spark_cache_entries\{cache="default"\} [1-9]`).MatchString(r.body) {
		t.Errorf("spark_cache_entries is not positive")
	}
}

// TestIntegrationBadInputFromOrigin: malformed, conflicting or enormous
// response fields never panic and never poison an entry.
func TestIntegrationBadInputFromOrigin(t *testing.T) {
	e := startEdge(t, "")
	var vary5000 strings.Builder
	for i := 0; i < 5000; i++ {
		if i > 0 {
			vary5000.WriteString(", ")
		}
		fmt.Fprintf(&vary5000, "X-F%d", i)
	}
	big := strings.Repeat("v", 60<<10)
	cases := []struct {
		name   string
		hdr    []string
		stored bool
		maxTTL int // when stored: ttl at most this (0: don't check)
	}{
		{"non-numeric max-age", []string{"Cache-Control", "max-age=abc"}, false, 0},
		{"negative max-age", []string{"Cache-Control", "max-age=-10"}, false, 0},
		{"fractional max-age", []string{"Cache-Control", "max-age=1.5"}, false, 0},
		{"conflicting max-age: smaller wins", []string{"Cache-Control", "max-age=600, max-age=5"}, true, 5},
		{"conflicting max-age over two lines", []string{"Cache-Control", "max-age=5", "Cache-Control", "max-age=600"}, true, 5},
		{"overflowing max-age", []string{"Cache-Control", "max-age=99999999999999999999999999"}, true, 0},
		{"no-store with max-age", []string{"Cache-Control", "max-age=600, no-store"}, false, 0},
		{"unbalanced quote", []string{"Cache-Control", `max-age=60, no-cache="Set-Cookie`}, false, 0},
		{"qualified no-cache", []string{"Cache-Control", `no-cache="Set-Cookie, X-A", max-age=60`}, false, 0},
		{"junk directives", []string{"Cache-Control", `,,;;==, =5, "", foo=bar, max-age=60, private=`}, false, 0},
		{"junk around max-age", []string{"Cache-Control", `,,;;==, =5, "", foo="a,b", max-age=60`}, true, 60},
		{"valueless max-age counts as 0", []string{"Cache-Control", "max-age, max-age=60"}, false, 0},
		{"upper case", []string{"Cache-Control", "MAX-AGE=60"}, true, 60},
		{"huge Age", []string{"Cache-Control", "max-age=60", "Age", "99999999999999999999999"}, false, 0},
		{"negative Age ignored", []string{"Cache-Control", "max-age=60", "Age", "-5"}, true, 60},
		{"junk Age ignored", []string{"Cache-Control", "max-age=60", "Age", "soon"}, true, 60},
		{"junk Expires", []string{"Expires", "next tuesday"}, false, 0},
		{"junk Date", []string{"Cache-Control", "max-age=60", "Date", "never"}, true, 60},
		{"5000 Vary fields", []string{"Cache-Control", "max-age=60", "Vary", vary5000.String()}, false, 0},
		{"60 KB header value", []string{"Cache-Control", "max-age=60", "X-Big", big}, true, 60},
		{"junk Cache-Tags", []string{"Cache-Control", "max-age=60", "Cache-Tags", ",,, \t ,"}, true, 60},
		{"junk Spark-Purge", []string{"Cache-Control", "max-age=60", "Spark-Purge", ", ,"}, true, 60},
		{"junk CDN-Cache-Control", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "max-age=zz"}, false, 0},
		{"junk Vary", []string{"Cache-Control", "max-age=60", "Vary", ",, ,"}, true, 60},
	}
	m := map[string]http.HandlerFunc{}
	for i, c := range cases {
		m[fmt.Sprintf("/bad/%d", i)] = serveWith(200, fmt.Sprintf("body %d", i), c.hdr...)
	}
	e.origin.handle(routes(m))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := fmt.Sprintf("/bad/%d", i)
			want := fmt.Sprintf("body %d", i)
			expect(t, "first", e.get(p), 200, want, false)
			r := e.get(p)
			expect(t, "second", r, 200, want, c.stored)
			if c.stored && c.maxTTL > 0 && ttlOf(r) > c.maxTTL {
				t.Errorf("ttl %d, want at most %d", ttlOf(r), c.maxTTL)
			}
			if c.name == "60 KB header value" && r.header.Get("X-Big") != big {
				t.Errorf("60 KB header value not served intact (%d bytes)", len(r.header.Get("X-Big")))
			}
			// RFC 9111 §5.1: a non-negative integer, 2147483648 on overflow.
			if age, err := strconv.ParseInt(r.header.Get("Age"), 10, 64); r.header.Get("Age") != "" && (err != nil || age < 0 || age > 1<<31) {
				t.Errorf("Age %q sent to the client", r.header.Get("Age"))
			}
			if c.name == "huge Age" && r.header.Get("Age") != "2147483648" {
				t.Errorf("overflowing Age forwarded as %q, want 2147483648", r.header.Get("Age"))
			}
		})
	}
}

// TestIntegrationBadInputFromClients: malformed requests never panic and never
// poison entries other clients get.
func TestIntegrationBadInputFromClients(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = fmt.Fprintf(w, "path=%q lang=%d:%.16s", r.URL.EscapedPath(), len(r.Header.Get("Accept-Language")), r.Header.Get("Accept-Language"))
	})
	good := func(t *testing.T) {
		t.Helper()
		r := e.get("/ok", "Accept-Language", "en")
		if r.body != `path="/ok" lang=2:en` {
			t.Fatalf("well-formed request after bad input: %q (%q)", r.body, r.cacheStatus())
		}
	}
	e.get("/ok", "Accept-Language", "en")
	good(t)

	// Enormous request header values: Caddy refuses them by default (431,
	// max_header_size 16 KiB), before the cache.
	langA := strings.Repeat("en-US,", 10<<10)[:60<<10]
	langB := strings.Repeat("fr-FR,", 10<<10)[:60<<10]
	for _, hdr := range [][]string{
		{"Accept-Language", langA},
		{"Authorization", "Bearer " + strings.Repeat("x", 60<<10)},
		{"Cookie", strings.Repeat("a=b; ", 12<<10)},
	} {
		if r := e.get("/ok", hdr...); r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("60 KB %s with the default max_header_size: %d", hdr[0], r.status)
		}
	}
	good(t)
	// With a larger max_header_size they reach the cache: hashed into keys,
	// stored, still correct.
	e.load(strings.Replace(caddyfileFor(e.ports[0], e.ports[1], e.origin.addr(), defaultCacheBlock),
		"\tmetrics\n", "\tmetrics\n\tservers {\n\t\tmax_header_size 1MiB\n\t}\n", 1))
	e.get("/ok", "Accept-Language", "en")
	good(t)
	expect(t, "60 KB Accept-Language", e.get("/ok", "Accept-Language", langA), 200, `path="/ok" lang=61440:en-US,en-US,en-U`, false)
	expect(t, "60 KB Accept-Language again", e.get("/ok", "Accept-Language", langA), 200, `path="/ok" lang=61440:en-US,en-US,en-U`, true)
	expect(t, "another 60 KB Accept-Language", e.get("/ok", "Accept-Language", langB), 200, `path="/ok" lang=61440:fr-FR,fr-FR,fr-F`, false)
	expect(t, "another 60 KB Accept-Language again", e.get("/ok", "Accept-Language", langB), 200, `path="/ok" lang=61440:fr-FR,fr-FR,fr-F`, true)
	good(t)

	// Junk request directives and validators.
	for _, hdr := range [][]string{
		{"Cache-Control", `max-age=abc, min-fresh=-1, max-stale=99999999999999999999999, only-if-cached="`},
		{"Cache-Control", `max-stale=-1`},
		{"Cache-Control", `,,,=,;`},
		{"Cache-Control", strings.Repeat("no-cache,", 6000)},
		{"If-None-Match", `"unterminated, W/, ,,, *x`},
		{"If-Modified-Since", "Thu, 99 Foo 99999 99:99:99 GMT"},
		{"Range", "bytes=--1,junk"},
		{"Accept-Encoding", strings.Repeat("gzip;q=0.", 6000)},
		{"Authorization", strings.Repeat("x", 60<<10)},
		{"Cookie", strings.Repeat("a=b; ", 12<<10)},
		{"Accept-Language", strings.Repeat("de;q=0.", 8000)},
	} {
		r := e.get("/ok", hdr...)
		if r.status != 200 && r.status != 304 && r.status != 400 && r.status != 504 {
			t.Errorf("%s %.40q: status %d", hdr[0], hdr[1], r.status)
		}
		good(t)
	}

	// Invalid UTF-8 in paths: percent-encoded, and raw on the wire.
	expect(t, "percent-encoded invalid UTF-8", e.get("/bad/%ff%fe%00?q=%c3%28"), 200, `path="/bad/%ff%fe%00" lang=0:`, false)
	expect(t, "percent-encoded invalid UTF-8 again", e.get("/bad/%ff%fe%00?q=%c3%28"), 200, `path="/bad/%ff%fe%00" lang=0:`, true)
	if n := e.purge(`{"keys":["/bad/%ff%fe%00?q=%c3%28"]}`); n < 1 {
		t.Errorf("purge of an invalid-UTF-8 key removed %d", n)
	}
	for _, raw := range []string{
		"GET /raw/\xff\xfe\xc3\x28?\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n",
		"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: \x1f\x1e\x01\r\n",
		"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: en\xff\xfe\r\n",
		"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\x00evil\r\n",
		"GET /ok?\x00=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n",
	} {
		if st := rawStatus(t, e, raw+"Connection: close\r\n\r\n"); st >= 500 {
			t.Errorf("raw request %q: %d", raw, st)
		}
		good(t)
	}
	// The raw invalid UTF-8 path again: whatever it got, it gets again.
	first := rawStatus(t, e, "GET /raw/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	if again := rawStatus(t, e, "GET /raw/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); again != first {
		t.Errorf("raw invalid UTF-8 path: %d then %d", first, again)
	}

	// A request with 5000 header lines.
	req, _ := http.NewRequest("GET", e.site+"/ok", nil)
	for i := 0; i < 5000; i++ {
		req.Header.Add(fmt.Sprintf("X-H%d", i), "v")
	}
	req.Header.Set("Accept-Language", "en")
	if r := e.send(req); r.status != 200 && r.status != 431 {
		t.Errorf("5000 header lines: %d", r.status)
	}
	good(t)
}

// rawStatus writes a raw request to the edge and returns the response status.
func rawStatus(t *testing.T, e *edge, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.site, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request %q: no HTTP response: %v", raw, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestIntegrationConcurrentStreams: a second client of an event stream (or any
// response that is not stored) is not held back until the first one's
// response ends: request coalescing only waits for responses being stored.
func TestIntegrationConcurrentStreams(t *testing.T) {
	e := startEdge(t, "")
	release, hold := make(chan struct{}), make(chan struct{})
	defer close(release)
	defer close(hold)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	firstEvent := func(name string) chan string {
		ch := make(chan string, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctxTimeout(t, 60*time.Second), "GET", e.site+"/stream", nil)
			res, err := e.client.Do(req)
			if err != nil {
				ch <- name + ": " + err.Error()
				return
			}
			defer res.Body.Close()
			buf := make([]byte, len("data: hello\n\n"))
			if _, err := io.ReadFull(res.Body, buf); err != nil {
				ch <- name + ": " + err.Error()
				return
			}
			ch <- string(buf)
			<-hold // keep the stream open
		}()
		return ch
	}
	for i, name := range []string{"first", "second", "third"} {
		select {
		case got := <-firstEvent(name):
			if got != "data: hello\n\n" {
				t.Fatalf("%s client: %q", name, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s client of the stream got nothing while %d other stream(s) are open", name, i)
		}
	}
	if n := e.origin.hits("GET", "/stream"); n != 3 {
		t.Errorf("origin saw %d stream requests, want 3", n)
	}
}

// TestIntegrationPurgeDuringFill: a purge that happens while a response is
// being fetched is not undone when the fetch completes.
func TestIntegrationPurgeDuringFill(t *testing.T) {
	e := startEdge(t, "")
	var v atomic.Int64
	// The first fill is answered only after the purge has returned.
	purged := make(chan struct{})
	var purgedOnce sync.Once
	endPurge := func() { purgedOnce.Do(func() { close(purged) }) }
	defer endPurge()
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		n := v.Add(1)
		if n == 1 {
			select {
			case <-purged:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Cache-Tags", "slow")
		_, _ = fmt.Fprintf(w, "v%d", n)
	})
	done := make(chan *resp, 1)
	go func() {
		res, err := e.client.Get(e.site + "/slowfill")
		if err != nil {
			done <- &resp{status: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- &resp{status: res.StatusCode, body: string(b)}
	}()
	eventually(t, 15*time.Second, "the fill to reach the origin", func() bool { return e.origin.hits("GET", "/slowfill") == 1 })
	e.purge(`{"tags":["slow"]}`)
	endPurge()
	if r := <-done; r.status != 200 || r.body != "v1" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	expect(t, "after the purge", e.get("/slowfill"), 200, "v2", false)
	expect(t, "then stored", e.get("/slowfill"), 200, "v2", true)
}

// TestIntegrationTruncatedOriginBody: a response the origin breaks off is
// never stored.
func TestIntegrationTruncatedOriginBody(t *testing.T) {
	e := startEdge(t, "")
	var n atomic.Int64
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		if n.Add(1)%2 == 1 { // every other response is cut off
			if r.URL.Path == "/cut/cl" {
				w.Header().Set("Content-Length", "10000")
			}
			_, _ = io.WriteString(w, strings.Repeat("x", 5000))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, strings.Repeat("y", 10000))
	})
	for _, p := range []string{"/cut/cl", "/cut/chunked"} {
		res, err := e.client.Get(e.site + p)
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: cut-off response read without an error", p)
		}
		r := e.get(p)
		expect(t, p+" after a cut-off response", r, 200, strings.Repeat("y", 10000), false)
		expect(t, p+" stored", e.get(p), 200, strings.Repeat("y", 10000), true)
	}
}

// TestIntegrationCoalescingPerUser: concurrent cold requests of two users on
// a private path: one origin request each, and each gets their own.
func TestIntegrationCoalescingPerUser(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("Cache-Control", "private, max-age=100")
		_, _ = io.WriteString(w, "me of "+userOf(r))
	})
	users := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	var failures []string
	for i := 0; i < 60; i++ {
		u := users[i%len(users)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", e.site+"/me", nil)
			req.Header.Set("Authorization", "Bearer "+u)
			res, err := e.client.Do(req)
			if err != nil {
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) != "me of "+u {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s got %q", u, b))
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if n := e.origin.hits("GET", "/me"); n != len(users) {
		t.Errorf("origin saw %d requests, want %d (one per user)", n, len(users))
	}
}

// TestIntegrationEncodedHits: the stored body of a compressed variant is a
// valid encoding of the origin's body.
func TestIntegrationEncodedHits(t *testing.T) {
	e := startEdge(t, "")
	body := strings.Repeat(`{"name":"spark","bio":"likes long walks"},`, 100)
	e.origin.handle(serveWith(200, body, "Cache-Control", "max-age=100"))
	for i, want := range []bool{false, true} {
		r := e.get("/json", "Accept-Encoding", "gzip")
		expect(t, fmt.Sprintf("gzip #%d", i), r, 200, "\x00any", want)
		if r.header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q", r.header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != body {
			t.Errorf("gzip #%d: body does not decode to the origin's (%v)", i, err)
		}
		if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
			t.Errorf("gzip #%d: Content-Length %s for %d bytes", i, cl, len(r.body))
		}
	}
	expect(t, "identity", e.get("/json"), 200, body, false)
	expect(t, "identity hit", e.get("/json"), 200, body, true)
	if r := e.do("HEAD", "/json", "Accept-Encoding", "gzip"); !r.isHit() || r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("HEAD gzip: %q %q", r.cacheStatus(), r.header.Get("Content-Encoding"))
	}
}

// TestIntegrationNoCacheResponse: a no-cache response is stored but
// revalidated before every use.
func TestIntegrationNoCacheResponse(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"nc"`)
		if r.Header.Get("If-None-Match") == `"nc"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "always validated")
	})
	expect(t, "fill", e.get("/nc"), 200, "always validated", false)
	for i := 0; i < 3; i++ {
		r := e.get("/nc")
		expect(t, "use", r, 200, "always validated", false)
		if !strings.Contains(r.cacheStatus(), "fwd-status=304") {
			t.Errorf("Cache-Status %q, want a 304 revalidation", r.cacheStatus())
		}
	}
	if n := e.origin.hits("GET", "/nc"); n != 4 {
		t.Errorf("origin saw %d requests, want 4", n)
	}
	if inm := e.origin.lastRequest("GET", "/nc").Header.Get("If-None-Match"); inm != `"nc"` {
		t.Errorf("revalidation If-None-Match %q", inm)
	}
}

// TestIntegrationUpgradePassesThrough: Upgrade requests (WebSocket and
// friends) reach the origin untouched and are never cached.
func TestIntegrationUpgradePassesThrough(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			w.Header().Set("Cache-Control", "max-age=100")
			_, _ = io.WriteString(w, "plain")
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(conn, "echo: "+line)
	})
	e.get("/ws") // a stored plain response for the same URL
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.site, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 101 || res.Header.Get("Cache-Status") != "" {
			t.Errorf("upgrade #%d: %d Cache-Status %q", i, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		_, _ = io.WriteString(conn, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: ping\n" {
			t.Errorf("upgrade #%d: %q %v", i, line, err)
		}
		conn.Close()
	}
	if n := e.origin.hits("GET", "/ws"); n != 3 {
		t.Errorf("origin saw %d requests, want 3", n)
	}
}

// TestIntegrationCookieUsers: users identified by cookies (no Authorization)
// get per-user entries too, even when the response varies on Authorization.
func TestIntegrationCookieUsers(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Vary", "Authorization")
		c, _ := r.Cookie("sid")
		who := "nobody"
		if c != nil {
			who = c.Value
		}
		_, _ = io.WriteString(w, "session "+who)
	})
	for _, round := range []bool{false, true} {
		for _, sid := range []string{"s1", "s2"} {
			expect(t, "cookie "+sid, e.get("/me/cookie", "Cookie", "sid="+sid), 200, "session "+sid, round)
		}
	}
	expect(t, "no cookie", e.get("/me/cookie"), 200, "session nobody", false)
}

// TestIntegrationRequestNoStore: a request's no-store keeps its response out
// of the cache.
func TestIntegrationRequestNoStore(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, "x", "Cache-Control", "max-age=100"))
	expect(t, "no-store request", e.get("/rns", "Cache-Control", "no-store"), 200, "x", false)
	expect(t, "next", e.get("/rns"), 200, "x", false)
	expect(t, "then stored", e.get("/rns"), 200, "x", true)
}

// TestIntegrationTagsSurviveRevalidation: an entry refreshed by a 304 (which
// carries no Cache-Tags) is still purged by its tags.
func TestIntegrationTagsSurviveRevalidation(t *testing.T) {
	e := startEdge(t, "")
	var n atomic.Int64
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		if r.Header.Get("If-None-Match") == `"t1"` {
			w.Header().Set("Cache-Control", "max-age=100")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"t1"`)
		w.Header().Set("Cache-Tags", "user:42")
		if v == 1 {
			w.Header().Set("Age", "30") // stale on arrival
		}
		_, _ = fmt.Fprintf(w, "tagged v%d", v)
	})
	e.get("/tagged")
	expect(t, "revalidated", e.get("/tagged"), 200, "tagged v1", false)
	expect(t, "fresh after the 304", e.get("/tagged"), 200, "tagged v1", true)
	if removed := e.purge(`{"tags":["user:42"]}`); removed < 1 {
		t.Errorf("tag purge after a revalidation removed %d", removed)
	}
	expect(t, "after the tag purge", e.get("/tagged"), 200, "tagged v3", false)

	// And by Spark-Purge, after a second revalidation cycle.
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			w.Header().Set("Spark-Purge", "user:7")
			w.WriteHeader(http.StatusNoContent)
		case r.Header.Get("If-None-Match") == `"t7"`:
			w.Header().Set("Cache-Control", "max-age=100")
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("Age", "30")
			w.Header().Set("ETag", `"t7"`)
			w.Header().Set("Cache-Tags", "user:7")
			_, _ = io.WriteString(w, "seven")
		}
	})
	e.get("/seven")
	e.get("/seven")
	expect(t, "seven fresh", e.get("/seven"), 200, "seven", true)
	e.do("POST", "/events/user7")
	if r := e.get("/seven"); r.isHit() {
		t.Errorf("Spark-Purge of a revalidated entry's tag left it: %q", r.cacheStatus())
	}
}

// TestIntegrationStreamsWhileStoring: a response being stored reaches the
// client as the origin sends it, not when it ends.
func TestIntegrationStreamsWhileStoring(t *testing.T) {
	e := startEdge(t, "")
	release := make(chan struct{})
	part := strings.Repeat("s", 8<<10)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, part)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(30 * time.Second): // well past the client's wait below
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, part)
	})
	res, err := e.client.Get(e.site + "/streamed")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(res.Body, make([]byte, len(part)))
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first part did not reach the client before the origin finished")
	}
	close(release)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != part {
		t.Fatalf("rest: %d bytes, %v", len(rest), err)
	}
	expect(t, "stored", e.get("/streamed"), 200, part+part, true)
}
