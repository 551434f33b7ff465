package cache

// Integration tests of RFC 9111 details and of the repository's Caddyfile
// defaults.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// repoCacheBlock returns the spark_cache block of the repository's
// Caddyfile, with a test-sized capacity.
func repoCacheBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	// The repo's block carries a matcher (spark_cache @routed {): keep
	// the options only.
	start := strings.Index(text, "spark_cache @routed {")
	if start < 0 {
		t.Fatal("no spark_cache block in the repo Caddyfile")
	}
	depth := 0
	for i := start; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				block := "spark_cache " + text[strings.Index(text[start:], "{")+start:i+1]
				return regexp.MustCompile(`(?m)^(\s*)capacity\s+\S+`).ReplaceAllString(block, "${1}capacity 16MiB")
			}
		}
	}
	t.Fatal("unterminated spark_cache block in the repo Caddyfile")
	return ""
}

// TestIntegrationRepoCaddyfileStaleDefaults: with the repo Caddyfile's
// cache block (default stale_while_revalidate 1m, stale_if_error 1h), paths
// its rules do not name behave per RFC 9111: a response without freshness
// information or validator (the origin's /metrics) is never stored, and one
// with max-age=0, an Expires in the past or an age past its lifetime is
// revalidated before every use, never served stale. Only responses that
// were fresh get the default windows.
func TestIntegrationRepoCaddyfileStaleDefaults(t *testing.T) {
	e := startEdge(t, repoCacheBlock(t))
	var failing atomic.Bool
	lm := time.Now().Add(-24 * time.Hour).UTC().Format(http.TimeFormat)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/metrics":
			h.Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = fmt.Fprintf(w, "spark_requests_total %d\n", time.Now().UnixNano())
			return
		case "/api/other/max-age-0":
			h.Set("Cache-Control", "max-age=0")
			h.Set("ETag", `"m0"`)
		case "/api/other/expired":
			h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
			h.Set("Expires", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
			h.Set("Last-Modified", lm)
		case "/api/other/stale-on-arrival":
			h.Set("Cache-Control", "max-age=10")
			h.Set("Age", "30")
			h.Set("ETag", `"s"`)
		case "/api/other/fresh":
			h.Set("Cache-Control", "max-age=1")
			h.Set("ETag", `"f"`)
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == h.Get("ETag") || r.Header.Get("If-Modified-Since") == lm && h.Get("Last-Modified") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})

	m1, m2 := e.get("/metrics"), e.get("/metrics")
	if m1.body == m2.body || m2.isHit() || !strings.Contains(m2.cacheStatus(), "detail=not-fresh") || e.origin.hits("GET", "/metrics") != 2 {
		t.Errorf("/metrics: second response %q (%q): stored for the stale window", m2.body, m2.cacheStatus())
	}
	mustAsk := []string{"/api/other/max-age-0", "/api/other/expired", "/api/other/stale-on-arrival"}
	for _, p := range mustAsk {
		if r := e.get(p); !strings.Contains(r.cacheStatus(), "stored") {
			t.Errorf("%s: fill %q, want stored (for revalidation)", p, r.cacheStatus())
		}
		for i := 0; i < 2; i++ {
			r := e.get(p)
			expect(t, p, r, 200, "body of "+p, false)
			if !strings.Contains(r.cacheStatus(), "fwd-status=304") {
				t.Errorf("%s #%d: Cache-Status %q, want a revalidation before use", p, i, r.cacheStatus())
			}
		}
		if n := e.origin.hits("GET", p); n != 3 {
			t.Errorf("%s: origin saw %d requests, want 3 (every use asked)", p, n)
		}
	}
	expect(t, "fresh fill", e.get("/api/other/fresh"), 200, "body of /api/other/fresh", false)
	time.Sleep(1100 * time.Millisecond)
	if r := e.get("/api/other/fresh"); !strings.Contains(r.cacheStatus(), "stale-while-revalidate") {
		t.Errorf("a fresh response went stale: %q, want the default stale-while-revalidate window", r.cacheStatus())
	}

	failing.Store(true)
	for _, p := range append(mustAsk, "/metrics") {
		if r := e.get(p); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s with the origin down: %d %q (%q), want its 503: served stale though never fresh", p, r.status, r.body, r.cacheStatus())
		}
	}
	time.Sleep(1100 * time.Millisecond) // stale again after the refresh above
	if r := e.get("/api/other/fresh"); r.status != 200 || !strings.Contains(r.cacheStatus(), "stale") {
		t.Errorf("fresh-once response with the origin down: %d %q, want the default stale-if-error", r.status, r.cacheStatus())
	}
}

// TestIntegrationAgeAndExpiresDetails: Age: 7200, 0 counts as 7200 (RFC
// 9111 §5.1) and reaches the client as 7200; an Expires that is not an
// exact HTTP-date (one-digit hour, doubled space) means already expired.
func TestIntegrationAgeAndExpiresDetails(t *testing.T) {
	e := startEdge(t, "")
	tomorrow := time.Now().UTC().Add(24 * time.Hour)
	at5 := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 5, 0, 0, 0, time.UTC)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/age/list":
			h.Set("Cache-Control", "max-age=10000")
			h.Set("Age", "7200, 0")
		case "/exp/one-digit-hour":
			h.Set("Expires", at5.Format("Mon, 02 Jan 2006 3:04:05 GMT"))
		case "/exp/doubled-space":
			h.Set("Expires", at5.Format("Mon, 02  Jan 2006 15:04:05 GMT"))
		case "/exp/exact":
			h.Set("Expires", at5.Format(http.TimeFormat))
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})
	r := e.get("/age/list")
	if r.header.Get("Age") != "7200" {
		t.Errorf("miss Age %q, want 7200", r.header.Values("Age"))
	}
	r = e.get("/age/list")
	expect(t, "age list hit", r, 200, "body of /age/list", true)
	if ttl := ttlOf(r); ttl < 2790 || ttl > 2800 {
		t.Errorf("hit ttl %d, want about 2800 (10000 - 7200)", ttl)
	}
	if age, _ := strconv.Atoi(r.header.Get("Age")); age < 7200 || age > 7210 {
		t.Errorf("hit Age %q, want about 7200", r.header.Get("Age"))
	}
	for _, p := range []string{"/exp/one-digit-hour", "/exp/doubled-space"} {
		e.get(p)
		if r := e.get(p); r.isHit() {
			t.Errorf("%s: stored until an Expires Go's http.ParseTime reads (%q)", p, r.cacheStatus())
		}
	}
	e.get("/exp/exact")
	expect(t, "exact Expires", e.get("/exp/exact"), 200, "body of /exp/exact", true)
}
