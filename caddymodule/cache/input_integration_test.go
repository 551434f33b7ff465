package cache

// Integration tests with malformed, conflicting or enormous input from the
// origin and from clients: never a panic, never a poisoned entry.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

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
	e.load(caddytest.GlobalOptions(e.ports[0], "\tservers {\n\t\tmax_header_size 1MiB\n\t}\n") + siteFor(e.ports[1], e.origin.addr(), defaultCacheBlock))
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
