package cache

// Integration harness: a real Caddy instance, loaded from Caddyfile text on
// free ports (caddytest), in front of an httptest origin whose handler each
// test programs and whose requests it counts. Caddy is process-global:
// tests using the harness run sequentially (no t.Parallel).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// testPurgeToken is the purge_token of the harness's default cache block.
const testPurgeToken = "s3cret-purge-token"

// defaultCacheBlock is the spark_cache block most tests run with: small
// sizes (bigcache preallocates part of the capacity), rules mirroring the
// repo's Caddyfile, and short windows tests can wait out.
const defaultCacheBlock = `spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
		purge_token ` + testPurgeToken + `
		encodings zstd gzip
		ignore_query utm_*
		rule /etag/* {
			ttl 5m
			etag
		}
		rule /ttl/* {
			ttl 10m
		}
		rule /me {
			private
		}
		rule /me/* {
			private
		}
		rule /swr-rule/* {
			stale_while_revalidate 1m
		}
		rule /sie-rule/* {
			stale_if_error 1h
		}
		rule /suggestions {
			ttl 2m
			private
			vary Authorization Location
		}
	}`

// origin is the programmable, counting upstream.
type origin struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.HandlerFunc]

	mu    sync.Mutex
	count map[string]int           // "METHOD path" -> requests
	last  map[string]*http.Request // "METHOD path" -> last request (header only)
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{count: map[string]int{}, last: map[string]*http.Request{}}
	o.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "origin "+r.URL.Path)
	})
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.Method + " " + r.URL.Path
		o.mu.Lock()
		o.count[k]++
		o.last[k] = &http.Request{Method: r.Method, URL: r.URL, Header: r.Header.Clone(), Host: r.Host}
		o.mu.Unlock()
		(*o.handler.Load())(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// handle programs the origin.
func (o *origin) handle(h http.HandlerFunc) { o.handler.Store(&h) }

// hits returns how many requests "METHOD path" reached the origin.
func (o *origin) hits(method, path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[method+" "+path]
}

// lastRequest returns the last request "METHOD path" that reached the origin.
func (o *origin) lastRequest(method, path string) *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[method+" "+path]
}

func (o *origin) addr() string { return strings.TrimPrefix(o.srv.URL, "http://") }

// siteFor is a site on 127.0.0.1:port running the cache block, encode and
// a reverse proxy to originAddr.
func siteFor(port int, originAddr, cacheBlock string) string {
	return `
http://:` + strconv.Itoa(port) + ` {
	bind 127.0.0.1
	` + cacheBlock + `
	encode zstd gzip
	reverse_proxy ` + originAddr + `
}
`
}

// caddyfileFor renders the harness's usual Caddyfile: the global options
// and one site with the cache block.
func caddyfileFor(adminPort, sitePort int, originAddr, cacheBlock string) string {
	return caddytest.GlobalOptions(adminPort, "") + siteFor(sitePort, originAddr, cacheBlock)
}

// launch loads the Caddyfile render makes for n free ports (the first is
// the admin endpoint's) in front of a new origin. Caddy stops at the
// test's end, before its origin goes away.
func launch(t *testing.T, n int, render func(ports []int, originAddr string) string) (*origin, []int) {
	t.Helper()
	o := newOrigin(t)
	ports := caddytest.LoadOnFreePorts(t, n, func(p []int) string { return render(p, o.addr()) })
	return o, ports
}

// edge is a client of a Caddy site with spark_cache.
type edge struct {
	t      *testing.T
	ports  [2]int // admin, site
	site   string // http://127.0.0.1:port
	admin  string // http://127.0.0.1:port
	origin *origin
	client *http.Client
}

// newEdge is a client of the site on sitePort whose Caddy has its admin
// endpoint on adminPort. It follows no redirect and asks for no
// compression; wrap, when set, wraps its transport.
func newEdge(t *testing.T, o *origin, adminPort, sitePort int, wrap func(http.RoundTripper) http.RoundTripper) *edge {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}
	t.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	return &edge{
		t:      t,
		ports:  [2]int{adminPort, sitePort},
		site:   "http://127.0.0.1:" + strconv.Itoa(sitePort),
		admin:  "http://127.0.0.1:" + strconv.Itoa(adminPort),
		origin: o,
		client: &http.Client{
			Transport:     rt,
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// startEdge starts Caddy with the given spark_cache block in front of a new
// origin; an empty block means defaultCacheBlock.
func startEdge(t *testing.T, cacheBlock string) *edge {
	t.Helper()
	if cacheBlock == "" {
		cacheBlock = defaultCacheBlock
	}
	e, _ := startEdgeWith(t, 2, func(p []int, originAddr string) string {
		return caddyfileFor(p[0], p[1], originAddr, cacheBlock)
	})
	return e
}

// startEdgeWith loads the Caddyfile render makes for n free ports (the
// first is the admin endpoint's, the second the edge site's) in front of a
// new origin, and returns the edge and the ports.
func startEdgeWith(t *testing.T, n int, render func(ports []int, originAddr string) string) (*edge, []int) {
	t.Helper()
	o, ports := launch(t, n, render)
	return newEdge(t, o, ports[0], ports[1], nil), ports
}

// resp is a response with its body read.
type resp struct {
	status int
	header http.Header
	body   string
}

func (r *resp) cacheStatus() string { return r.header.Get("Cache-Status") }

func (r *resp) isHit() bool { return strings.Contains(r.cacheStatus(), "; hit") }

// do sends method path with header pairs ("Name", "value", ...).
func (e *edge) do(method, path string, hdr ...string) *resp {
	e.t.Helper()
	return e.doBody(method, path, nil, hdr...)
}

func (e *edge) get(path string, hdr ...string) *resp {
	e.t.Helper()
	return e.do(http.MethodGet, path, hdr...)
}

func (e *edge) doBody(method, path string, body []byte, hdr ...string) *resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.site+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if body == nil {
		req.Body = nil
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return e.send(req)
}

func (e *edge) send(req *http.Request) *resp {
	e.t.Helper()
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

// getAsync sends GET path (with header pairs) from another goroutine: a
// request meant to be in flight while the test does something else. A
// transport error comes back as status -1 with the error as body.
func (e *edge) getAsync(path string, hdr ...string) <-chan *resp {
	done := make(chan *resp, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, e.site+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		res, err := e.client.Do(req)
		if err != nil {
			done <- &resp{status: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			done <- &resp{status: -1, body: "read body: " + err.Error()}
			return
		}
		done <- &resp{status: res.StatusCode, header: res.Header, body: string(b)}
	}()
	return done
}

// getConcurrently sends n GETs of path at once (header, when set, gives
// request i's header pairs) and returns the responses in order.
func (e *edge) getConcurrently(n int, path string, header func(i int) []string) []*resp {
	results := make([]*resp, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		var hdr []string
		if header != nil {
			hdr = header(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = <-e.getAsync(path, hdr...)
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// adminDo sends a request to Caddy's admin endpoint.
func (e *edge) adminDo(method, path, token string, body string) *resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.admin+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

// purge calls POST /spark_cache/purge with the right token and returns
// "removed".
func (e *edge) purge(body string) int {
	e.t.Helper()
	r := e.adminDo(http.MethodPost, purgePath, testPurgeToken, body)
	if r.status != http.StatusOK {
		e.t.Fatalf("purge %s: status %d: %s", body, r.status, r.body)
	}
	var pr PurgeResponse
	if err := json.Unmarshal([]byte(r.body), &pr); err != nil {
		e.t.Fatalf("purge %s: decode %q: %v", body, r.body, err)
	}
	return pr.Removed
}

// gate holds origin handlers back until the test opens it, and opens at
// the test's end at the latest (before Caddy stops), so that no handler
// waits on it past the test.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// open lets every waiter go; opening twice is fine.
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens (true) or r is cancelled (false).
func (g *gate) wait(r *http.Request) bool {
	select {
	case <-g.ch:
		return true
	case <-r.Context().Done():
		return false
	}
}

// expect checks status, body and whether the response was a cache hit.
func expect(t *testing.T, what string, r *resp, status int, body string, hit bool) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (Cache-Status %q, body %.200q)", what, r.status, status, r.cacheStatus(), r.body)
	}
	if body != "\x00any" && r.body != body {
		t.Errorf("%s: body %.200q, want %.200q (Cache-Status %q)", what, r.body, body, r.cacheStatus())
	}
	if r.isHit() != hit {
		t.Errorf("%s: Cache-Status %q, want hit=%v", what, r.cacheStatus(), hit)
	}
}

// expectCacheStatus checks that r's Cache-Status holds each of parts.
func expectCacheStatus(t *testing.T, what string, r *resp, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.cacheStatus(), p) {
			t.Errorf("%s: Cache-Status %q lacks %q", what, r.cacheStatus(), p)
		}
	}
}

// ctxTimeout is a context for a test's ad-hoc requests.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// reload loads another Caddyfile with this edge's ports and origin, as
// "caddy reload" does.
func (e *edge) reload(cacheBlock string) {
	e.t.Helper()
	e.load(caddyfileFor(e.ports[0], e.ports[1], e.origin.addr(), cacheBlock))
}

// load loads text as this edge's new Caddyfile, waits for the old servers'
// sockets to close (caddytest.Reload: new connections then reach the new
// config) and drops idle connections to the old servers.
func (e *edge) load(text string) {
	e.t.Helper()
	caddytest.Reload(e.t, text)
	e.client.CloseIdleConnections()
}

// streamFirst sends GET path and reads the first n bytes of the response
// while the origin holds the rest back (what names them): they must reach
// the client before the origin is done. It returns the response, the rest
// of its body unread (closed at the test's end).
func (e *edge) streamFirst(path string, n int, what string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctxTimeout(e.t, 60*time.Second), http.MethodGet, e.site+path, nil)
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, n)
		if _, err := io.ReadFull(res.Body, buf); err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf)
	}()
	select {
	case first := <-got:
		return res, first
	case <-time.After(10 * time.Second):
		e.t.Fatalf("GET %s: %s did not reach the client", path, what)
		return nil, ""
	}
}

// upgradeEcho sends GET path with "Upgrade: echo" on a connection of its
// own and, once the response has come, "ping\n" over the upgraded
// connection; it returns the response and the line that came back (the
// origin's echo protocol answers "echo: ping\n").
func (e *edge) upgradeEcho(path string) (*http.Response, string, error) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.site, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "ping\n")
	line, err := br.ReadString('\n')
	return res, line, err
}

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

// atomicString is a string shared between a test and its origin.
type atomicString struct {
	mu sync.Mutex
	s  string
}

func (a *atomicString) Load() string { a.mu.Lock(); defer a.mu.Unlock(); return a.s }

func (a *atomicString) Store(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }
