package cache

// Integration tests of what revalidate.go does: conditional requests with
// the stored validators, 304 refreshes, stale-while-revalidate in the
// background and stale-if-error.

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

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

// TestIntegrationHeadRevalidatesStale: a HEAD on a stale entry revalidates
// it with a conditional GET (a HEAD-compatible request whose 304 freshens
// the stored GET response), answers with the updated header fields and no
// body, and the stored entry carries them from then on; a 200 replaces it.
func TestIntegrationHeadRevalidatesStale(t *testing.T) {
	e := startEdge(t, "")
	var version atomic.Int64
	version.Store(1)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := version.Load()
		etag := `"h` + strconv.FormatInt(v, 10) + `"`
		w.Header().Set("X-Seen", strconv.FormatInt(time.Now().UnixNano(), 10))
		if r.Header.Get("If-None-Match") == etag {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Set("X-Version", "refreshed")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Age", "30") // stale on arrival
		w.Header().Set("ETag", etag)
		w.Header().Set("X-Version", "v"+strconv.FormatInt(v, 10))
		if v > 1 {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Del("Age")
		}
		_, _ = fmt.Fprintf(w, "version %d", v)
	})

	e.get("/h/same")
	r := e.do("HEAD", "/h/same")
	if r.status != 200 || r.body != "" || r.header.Get("X-Version") != "refreshed" || r.header.Get("Content-Length") != "9" ||
		!strings.Contains(r.cacheStatus(), "fwd-status=304") {
		t.Errorf("HEAD on a stale entry: %d %q X-Version %q Content-Length %q (%q)", r.status, r.body, r.header.Get("X-Version"), r.header.Get("Content-Length"), r.cacheStatus())
	}
	if last := e.origin.lastRequest("GET", "/h/same"); last == nil || last.Header.Get("If-None-Match") != `"h1"` || e.origin.hits("HEAD", "/h/same") != 0 {
		t.Errorf("the revalidation was not a conditional GET")
	}
	r = e.get("/h/same")
	expect(t, "GET after the HEAD", r, 200, "version 1", true)
	if r.header.Get("X-Version") != "refreshed" {
		t.Errorf("stored header fields not updated by the HEAD's revalidation: X-Version %q", r.header.Get("X-Version"))
	}

	e.get("/h/changed")
	version.Store(2)
	r = e.do("HEAD", "/h/changed")
	if r.status != 200 || r.body != "" || r.header.Get("Etag") != `"h2"` || r.header.Get("X-Version") != "v2" {
		t.Errorf("HEAD on a changed resource: %d %q ETag %q X-Version %q", r.status, r.body, r.header.Get("Etag"), r.header.Get("X-Version"))
	}
	r = e.get("/h/changed")
	expect(t, "GET after the HEAD replaced the entry", r, 200, "version 2", true)
}

// TestIntegrationStaleWhileRevalidate: a stale entry within its
// stale-while-revalidate window is served at once while one background
// request refreshes it.
func TestIntegrationStaleWhileRevalidate(t *testing.T) {
	e := startEdge(t, "")
	var n atomic.Int64
	// The refresh does not answer until every stale response has arrived:
	// a client that waited for it would never get one.
	refreshing, release := make(chan struct{}), newGate(t)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		if v == 1 {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=30")
		} else {
			if v == 2 {
				close(refreshing)
			}
			if !release.wait(r) { // the refresh is slow: clients must not wait for it
				return
			}
			w.Header().Set("Cache-Control", "max-age=60")
		}
		_, _ = fmt.Fprintf(w, "v%d", v)
	})
	expect(t, "fill", e.get("/swr"), 200, "v1", false)
	time.Sleep(2100 * time.Millisecond) // max-age=1 has passed
	all := make(chan []*resp, 1)
	go func() { all <- e.getConcurrently(20, "/swr", nil) }()
	var results []*resp
	select {
	case results = <-all:
	case <-time.After(10 * time.Second):
		release.open()
		<-all
		t.Fatal("stale responses did not arrive while the refresh was held: clients waited for the refresh")
	}
	select {
	case <-refreshing:
	case <-time.After(10 * time.Second):
		t.Fatal("no background refresh reached the origin")
	}
	release.open()
	for i, r := range results {
		expect(t, fmt.Sprintf("stale #%d", i), r, 200, "v1", true)
		if !strings.Contains(r.cacheStatus(), "stale-while-revalidate") {
			t.Errorf("stale #%d: Cache-Status %q", i, r.cacheStatus())
		}
		if age, _ := strconv.Atoi(r.header.Get("Age")); age < 2 {
			t.Errorf("stale #%d: Age %q, want at least 2", i, r.header.Get("Age"))
		}
	}
	testutil.Eventually(t, 15*time.Second, "the background refresh", func() bool {
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
	testutil.Eventually(t, 15*time.Second, "the rule's background refresh", func() bool {
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
