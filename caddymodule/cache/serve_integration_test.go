package cache

// Integration tests of what serve.go does: hits, Age and ttl, request
// directives, conditionals and HEAD from a stored GET, and the requests the
// cache lets through (Range, Upgrade).

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
		res, line, err := e.upgradeEcho("/ws")
		if res.StatusCode != 101 || res.Header.Get("Cache-Status") != "" {
			t.Errorf("upgrade #%d: %d Cache-Status %q", i, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		if err != nil || line != "echo: ping\n" {
			t.Errorf("upgrade #%d: %q %v", i, line, err)
		}
	}
	if n := e.origin.hits("GET", "/ws"); n != 3 {
		t.Errorf("origin saw %d requests, want 3", n)
	}
}
