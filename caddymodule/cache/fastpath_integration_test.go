package cache

// Integration tests of the listener fast path (fastpath.go, fastconn.go,
// fastpath_module.go) through a real Caddy: a hit it answers is the hit
// the pipeline writes, and everything it must not answer is the
// pipeline's.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// fastPathCache is the cache block of the fast-path tests.
const fastPathCache = `spark_cache {
		name fastpath-test
		purge_token ` + testPurgeToken + `
	}`

// ttlPattern is Cache-Status's ttl parameter.
var ttlPattern = regexp.MustCompile(`ttl=-?[0-9]+`)

// startFastPathEdge starts an edge with the fast path on /pub/* (extra
// goes into the site block, before the cache).
func startFastPathEdge(t *testing.T, extra string) *edge {
	t.Helper()
	return startFastPathEdgeWith(t, extra, "")
}

// startFastPathEdgeWith is startFastPathEdge with more spark_fastpath
// options (lines of its block).
func startFastPathEdgeWith(t *testing.T, extra, options string) *edge {
	t.Helper()
	e, _ := startEdgeWith(t, 2, func(p []int, originAddr string) string {
		return caddytest.GlobalOptions(p[0], `	servers {
		listener_wrappers {
			spark_fastpath {
				cache fastpath-test
				paths /pub/* /exact
				`+options+`
			}
		}
	}
`) + siteFor(p[1], originAddr, extra+"\n\t"+fastPathCache)
	})
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Etag", `"v1"`)
		h.Set("X-Origin", "yes")
		switch {
		case strings.HasPrefix(r.URL.Path, "/pub/private"):
			h.Set("Cache-Control", "private, max-age=60")
		case strings.HasPrefix(r.URL.Path, "/pub/stale"):
			h.Set("Cache-Control", "max-age=3, stale-while-revalidate=60")
		default:
			h.Set("Cache-Control", "public, max-age=60")
		}
		body := "body of " + r.URL.RequestURI()
		if strings.HasPrefix(r.URL.Path, "/pub/big") {
			body = strings.Repeat(body+" ", 4000) // compressible: encode varies it
		}
		_, _ = io.WriteString(w, body)
	})
	return e
}

// fastCount is how many responses the fast path of the test cache wrote.
func fastCount(t *testing.T) float64 {
	t.Helper()
	var n float64
	found := false
	pool.Range(func(_, v any) bool {
		if p := v.(*pooled); p.name == "fastpath-test" {
			n, found = testutil.ToFloat64(p.metrics.fastPath), true
		}
		return true
	})
	if !found {
		t.Fatal("no cache fastpath-test is loaded")
	}
	return n
}

// rawDo sends requests (full request texts) on one keep-alive connection
// in one write and reads their responses.
func rawDo(t *testing.T, e *edge, reqs ...string) []*resp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.site, "http://"), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, strings.Join(reqs, "")); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(conn)
	var out []*resp
	for _, rq := range reqs {
		method, _, _ := strings.Cut(rq, " ")
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("read response to %q: %v", rq, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("read body of %q: %v", rq, err)
		}
		res.Body.Close()
		out = append(out, &resp{status: res.StatusCode, header: res.Header, body: string(b)})
	}
	return out
}

// request renders a keep-alive request the fast path may take.
func request(e *edge, method, target string, hdr ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(e.site, "http://") + "\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// viaFast sends one request that the fast path must answer.
func viaFast(t *testing.T, e *edge, method, target string, hdr ...string) *resp {
	t.Helper()
	before := fastCount(t)
	r := rawDo(t, e, request(e, method, target, hdr...))[0]
	if got := fastCount(t); got != before+1 {
		t.Fatalf("%s %s %v: the fast path did not answer (count %v → %v)", method, target, hdr, before, got)
	}
	return r
}

// viaPipeline sends the same request with a field the fast path does not
// take, so Caddy's pipeline answers it.
func viaPipeline(t *testing.T, e *edge, method, target string, hdr ...string) *resp {
	t.Helper()
	before := fastCount(t)
	r := rawDo(t, e, request(e, method, target, append(hdr, "X-Pipeline", "1")...))[0]
	if got := fastCount(t); got != before {
		t.Fatalf("%s %s %v: the fast path answered a request it must hand over", method, target, hdr)
	}
	return r
}

// sameResponse fails unless a and b have the same status, header fields
// (but Date and Age, and Cache-Status's ttl, which is of the moment too)
// and body.
func sameResponse(t *testing.T, what string, fast, pipe *resp) {
	t.Helper()
	if fast.status != pipe.status || fast.body != pipe.body {
		t.Fatalf("%s: fast path %d %q, pipeline %d %q", what, fast.status, fast.body, pipe.status, pipe.body)
	}
	names := func(h http.Header) []string {
		var n []string
		for k := range h {
			if k != "Date" && k != "Age" {
				n = append(n, k)
			}
		}
		slices.Sort(n)
		return n
	}
	if a, b := names(fast.header), names(pipe.header); !slices.Equal(a, b) {
		t.Fatalf("%s: fast path fields %v, pipeline %v", what, a, b)
	}
	for k, v := range pipe.header {
		if k == "Date" || k == "Age" {
			continue
		}
		if k == "Cache-Status" {
			if f, p := ttlPattern.ReplaceAllString(fast.header.Get(k), "ttl=N"), ttlPattern.ReplaceAllString(pipe.header.Get(k), "ttl=N"); f != p || len(v) != 1 || len(fast.header[k]) != 1 {
				t.Fatalf("%s: Cache-Status: fast path %q, pipeline %q", what, fast.header[k], v)
			}
			continue
		}
		if !slices.Equal(fast.header[k], v) {
			t.Fatalf("%s: %s: fast path %q, pipeline %q", what, k, fast.header[k], v)
		}
	}
	for _, k := range []string{"Date", "Age"} {
		if len(fast.header[k]) != 1 {
			t.Fatalf("%s: fast path %s %q", what, k, fast.header[k])
		}
	}
}

// warm fills the cache for target and makes its hot copy (the second
// request is a hit from the store, which keeps the copy).
func warm(t *testing.T, e *edge, target string, hdr ...string) {
	t.Helper()
	for i := 0; i < 2; i++ {
		rawDo(t, e, request(e, "GET", target, append(hdr, "X-Pipeline", "1")...))
	}
}

// TestFastPathHitIsThePipelinesHit: GET, HEAD, 304 and Vary'd hits from
// the fast path are the pipeline's responses but for Date and Age.
func TestFastPathHitIsThePipelinesHit(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	for _, c := range []struct {
		what, method, target string
		hdr                  []string
	}{
		{"GET", "GET", "/pub/a", nil},
		{"HEAD", "HEAD", "/pub/a", nil},
		{"If-None-Match match", "GET", "/pub/a", []string{"If-None-Match", `"v1"`}},
		{"If-None-Match weak match", "GET", "/pub/a", []string{"If-None-Match", `"x", W/"v1"`}},
		{"If-None-Match other", "GET", "/pub/a", []string{"If-None-Match", `"v2"`}},
		{"browser fields", "GET", "/pub/a", []string{"User-Agent", "t/1", "Accept", "*/*", "Accept-Language", "fr", "Connection", "keep-alive"}},
	} {
		fast := viaFast(t, e, c.method, c.target, c.hdr...)
		pipe := viaPipeline(t, e, c.method, c.target, c.hdr...)
		sameResponse(t, c.what, fast, pipe)
		if !pipe.isHit() {
			t.Fatalf("%s: pipeline Cache-Status %q, want a hit", c.what, pipe.cacheStatus())
		}
	}
	// Vary: Accept-Encoding (encode compresses the big body): each bucket
	// is its own variant.
	for _, ae := range [][]string{{"Accept-Encoding", "gzip"}, {"Accept-Encoding", "zstd, gzip"}, nil, {"Accept-Encoding", "identity"}} {
		warm(t, e, "/pub/big", ae...)
		fast := viaFast(t, e, "GET", "/pub/big", ae...)
		pipe := viaPipeline(t, e, "GET", "/pub/big", ae...)
		sameResponse(t, "Vary "+strings.Join(ae, ": "), fast, pipe)
		if len(fast.header["Vary"]) == 0 || len(fast.body) < 1000 && fast.header.Get("Content-Encoding") == "" {
			t.Fatalf("Vary %v: %v", ae, fast.header)
		}
	}
	// A query and an exact path.
	warm(t, e, "/pub/q?b=2&a=1")
	sameResponse(t, "query", viaFast(t, e, "GET", "/pub/q?a=1&b=2"), viaPipeline(t, e, "GET", "/pub/q?b=2&a=1"))
	warm(t, e, "/exact")
	sameResponse(t, "exact path", viaFast(t, e, "GET", "/exact"), viaPipeline(t, e, "GET", "/exact"))
}

// TestFastPathHandsOver: what the fast path must not answer, the pipeline
// answers, exactly as without the fast path.
func TestFastPathHandsOver(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	warm(t, e, "/other")
	warm(t, e, "/exact/more")
	warm(t, e, "/pub/private")
	for _, c := range []struct {
		what, req string
	}{
		{"Authorization", request(e, "GET", "/pub/a", "Authorization", "Bearer x")},
		{"Cookie", request(e, "GET", "/pub/a", "Cookie", "a=b")},
		{"Cache-Control", request(e, "GET", "/pub/a", "Cache-Control", "no-cache")},
		{"If-Modified-Since", request(e, "GET", "/pub/a", "If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT")},
		{"Range", request(e, "GET", "/pub/a", "Range", "bytes=0-1")},
		{"path not listed", request(e, "GET", "/other")},
		{"exact path only", request(e, "GET", "/exact/more")},
		{"private", request(e, "GET", "/pub/private")},
		{"dot segment", request(e, "GET", "/pub/../pub/a")},
		{"HTTP/1.0", "GET /pub/a HTTP/1.0\r\nHost: " + strings.TrimPrefix(e.site, "http://") + "\r\n\r\n"},
		{"absolute form", "GET " + e.site + "/pub/a HTTP/1.1\r\nHost: " + strings.TrimPrefix(e.site, "http://") + "\r\n\r\n"},
		{"other host", "GET /pub/a HTTP/1.1\r\nHost: other.example\r\n\r\n"},
		{"duplicate Host", "GET /pub/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	} {
		before := fastCount(t)
		got := rawDo(t, e, c.req)[0]
		if n := fastCount(t); n != before {
			t.Errorf("%s: the fast path answered (%q)", c.what, got.cacheStatus())
		}
	}
	// A purge ends the fast path's answers at once.
	viaFast(t, e, "GET", "/pub/a")
	if n := e.purge(`{"keys":["/pub/a"]}`); n == 0 {
		t.Fatal("purge removed nothing")
	}
	before := fastCount(t)
	r := rawDo(t, e, request(e, "GET", "/pub/a"))[0]
	if fastCount(t) != before || r.isHit() {
		t.Fatalf("after a purge: %q (fast path count %v → %v)", r.cacheStatus(), before, fastCount(t))
	}
	// Stale: the pipeline serves it (stale-while-revalidate), not the fast path.
	warm(t, e, "/pub/stale")
	viaFast(t, e, "GET", "/pub/stale")
	// At least 4 s later the entry is stale (max-age=3) however the test
	// was scheduled: the pipeline serves it (stale-while-revalidate). The
	// lifetime leaves a loaded machine 3 s between the fill and the fast
	// hit above (1 s was not always enough in CI-like load).
	time.Sleep(4100 * time.Millisecond)
	before = fastCount(t)
	r = rawDo(t, e, request(e, "GET", "/pub/stale"))[0]
	if fastCount(t) != before || !strings.Contains(r.cacheStatus(), "stale-while-revalidate") && !strings.Contains(r.cacheStatus(), "fwd=") {
		t.Fatalf("stale entry: %q (fast path count %v → %v)", r.cacheStatus(), before, fastCount(t))
	}
}

// TestFastPathPipelining: requests sent together are answered in order,
// the fast path's and the pipeline's on one connection.
func TestFastPathPipelining(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	warm(t, e, "/pub/b")
	before := fastCount(t)
	rs := rawDo(t, e,
		request(e, "GET", "/pub/a"),
		request(e, "HEAD", "/pub/b"),
		request(e, "GET", "/pub/b", "X-Pipeline", "1"),
		request(e, "GET", "/pub/a"), // after a hand-over: the pipeline's
		request(e, "GET", "/pub/c"), // a miss
	)
	want := []string{"body of /pub/a", "", "body of /pub/b", "body of /pub/a", "body of /pub/c"}
	for i, r := range rs {
		if r.status != http.StatusOK || r.body != want[i] {
			t.Fatalf("response %d: %d %q, want %q", i, r.status, r.body, want[i])
		}
	}
	if got := fastCount(t) - before; got != 2 {
		t.Fatalf("the fast path answered %v of them, want the first 2", got)
	}
	// Many fast answers on one connection, then a miss.
	var reqs []string
	for i := 0; i < 50; i++ {
		reqs = append(reqs, request(e, "GET", "/pub/a"))
	}
	reqs = append(reqs, request(e, "GET", "/pub/d"))
	rs = rawDo(t, e, reqs...)
	if rs[50].body != "body of /pub/d" || rs[49].body != "body of /pub/a" {
		t.Fatalf("last responses %q, %q", rs[49].body, rs[50].body)
	}
}

// TestFastPathStandsAsideForAccessLogs: with access logs on the server,
// every request goes through the pipeline (which logs it).
func TestFastPathStandsAsideForAccessLogs(t *testing.T) {
	e := startFastPathEdge(t, "log {\n\t\toutput discard\n\t}")
	warm(t, e, "/pub/a")
	before := fastCount(t)
	for i := 0; i < 3; i++ {
		if r := rawDo(t, e, request(e, "GET", "/pub/a"))[0]; !r.isHit() {
			t.Fatalf("request %d: %q", i, r.cacheStatus())
		}
	}
	if fastCount(t) != before {
		t.Fatal("the fast path answered on a server with access logs")
	}
}

// TestFastPathOff: SPARK_FASTPATH=off leaves the listener alone.
func TestFastPathOff(t *testing.T) {
	t.Setenv(FastPathEnv, "off")
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	before := fastCount(t)
	if r := rawDo(t, e, request(e, "GET", "/pub/a"))[0]; !r.isHit() || fastCount(t) != before {
		t.Fatalf("with %s=off: %q, fast path count %v → %v", FastPathEnv, r.cacheStatus(), before, fastCount(t))
	}
}
