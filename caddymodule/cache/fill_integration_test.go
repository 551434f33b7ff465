package cache

// Integration tests of what fill.go does: what is stored and for how long,
// generated ETags, request coalescing, size limits, and responses streamed
// while they are stored or passed through.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

// TestIntegrationRequestNoStore: a request's no-store keeps its response out
// of the cache.
func TestIntegrationRequestNoStore(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, "x", "Cache-Control", "max-age=100"))
	expect(t, "no-store request", e.get("/rns", "Cache-Control", "no-store"), 200, "x", false)
	expect(t, "next", e.get("/rns"), 200, "x", false)
	expect(t, "then stored", e.get("/rns"), 200, "x", true)
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
	hits := 0
	for i, r := range e.getConcurrently(clients, "/cold?k=1", nil) {
		if r.status == -1 {
			t.Fatalf("client %d: %s", i, r.body)
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

// TestIntegrationStreamedResponses: a response reaches the client as the
// origin sends it, not when it ends, whether it is being stored or is a
// server-sent event stream (flushed as it comes, never stored).
func TestIntegrationStreamedResponses(t *testing.T) {
	e := startEdge(t, "")
	part := strings.Repeat("s", 8<<10)
	for _, tc := range []struct {
		name, path, contentType, first, second string
		stored                                 bool
	}{
		{"stored while streamed", "/streamed", "application/octet-stream", part, part, true},
		{"event stream", "/events", "text/event-stream", "data: one\n\n", "data: two\n\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("Cache-Control", "max-age=100") // for an event stream: tempting, but a stream
				_, _ = io.WriteString(w, tc.first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-time.After(30 * time.Second): // well past the client's wait
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, tc.second)
			})
			res, first := e.streamFirst(tc.path, len(tc.first), "the first part, while the origin holds the rest")
			if cs := res.Header.Get("Cache-Status"); !tc.stored && (strings.Contains(cs, "stored") || strings.Contains(cs, "hit")) {
				t.Errorf("event stream Cache-Status %q", cs)
			}
			if first != tc.first {
				t.Fatalf("first part %.40q", first)
			}
			close(release)
			rest, err := io.ReadAll(res.Body)
			if err != nil || string(rest) != tc.second {
				t.Fatalf("rest: %.40q, %v", rest, err)
			}
			expect(t, "again", e.get(tc.path), 200, tc.first+tc.second, tc.stored)
			if n := e.origin.hits("GET", tc.path); !tc.stored && n != 2 {
				t.Errorf("origin saw %d requests, want 2: an event stream was stored", n)
			}
		})
	}
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
