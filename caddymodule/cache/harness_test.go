package cache

// Integration harness: a real Caddy instance, loaded from Caddyfile text, in
// front of an httptest origin whose handler each test programs and whose
// requests it counts. Caddy is process-global: tests using the harness run
// sequentially (no t.Parallel).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
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
	total atomic.Int64
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
		o.total.Add(1)
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

// edge is a running Caddy with spark_cache.
type edge struct {
	t      *testing.T
	ports  [2]int // admin, site
	site   string // http://127.0.0.1:port
	admin  string // http://127.0.0.1:port
	origin *origin
	client *http.Client
	// reloaded is when the last reload returned; see send.
	reloaded time.Time
}

// freePorts returns n distinct ports free on 127.0.0.1 (all n are held
// open until every one is picked, so no two are the same). They are free
// now, not when Caddy binds them: loadWithFreePorts retries on a port
// taken in between.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// loadWithFreePorts loads the Caddyfile render makes for n free ports and
// returns the ports. A port that another socket of this busy machine
// (another test package's client connection, say) took between freePorts
// and Caddy's bind fails the load with EADDRINUSE: then it tries new
// ports, a few times.
func loadWithFreePorts(t *testing.T, n int, render func(ports []int) string) []int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, n)
		text := render(ports)
		err := tryLoadCaddyfile(t, text)
		if err == nil {
			return ports
		}
		if attempt < 5 && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			t.Logf("caddy.Load on ports %v: %v; trying other ports", ports, err)
			continue
		}
		t.Fatalf("caddy.Load: %v\n%s", err, text)
	}
}

// caddyfileFor renders a Caddyfile: global options with the admin address
// and metrics, one site on sitePort with the cache block, encode and a
// reverse proxy to the origin.
func caddyfileFor(adminPort, sitePort int, originAddr, cacheBlock string) string {
	return `{
	admin 127.0.0.1:` + strconv.Itoa(adminPort) + `
	persist_config off
	auto_https off
	grace_period 2s
	metrics
	log {
		level ERROR
	}
}

http://:` + strconv.Itoa(sitePort) + ` {
	bind 127.0.0.1
	` + cacheBlock + `
	encode zstd gzip
	reverse_proxy ` + originAddr + `
}
`
}

// loadCaddyfile adapts and loads a Caddyfile into the process's Caddy.
func loadCaddyfile(t *testing.T, text string) {
	t.Helper()
	if err := tryLoadCaddyfile(t, text); err != nil {
		t.Fatalf("caddy.Load: %v", err)
	}
}

// tryLoadCaddyfile adapts a Caddyfile (failing the test if it does not
// adapt) and returns caddy.Load's error.
func tryLoadCaddyfile(t *testing.T, text string) error {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	cfgJSON, warnings, err := adapter.Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt Caddyfile: %v\n%s", err, text)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w.String())
	}
	return caddy.Load(cfgJSON, true)
}

// startEdge starts Caddy with the given spark_cache block in front of a new
// origin; an empty block means defaultCacheBlock.
func startEdge(t *testing.T, cacheBlock string) *edge {
	t.Helper()
	if cacheBlock == "" {
		cacheBlock = defaultCacheBlock
	}
	o := newOrigin(t)
	ports := loadWithFreePorts(t, 2, func(p []int) string { return caddyfileFor(p[0], p[1], o.addr(), cacheBlock) })
	adminPort, sitePort := ports[0], ports[1]
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}
	e := &edge{
		t:      t,
		ports:  [2]int{adminPort, sitePort},
		site:   "http://127.0.0.1:" + strconv.Itoa(sitePort),
		admin:  "http://127.0.0.1:" + strconv.Itoa(adminPort),
		origin: o,
		client: &http.Client{
			Transport:     tr,
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	// Registered after the origin's cleanup so it runs first: Caddy stops
	// before its upstream goes away.
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := caddy.Stop(); err != nil {
			t.Errorf("caddy.Stop: %v", err)
		}
	})
	return e
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
	if err != nil && e.replayableAfterReload(req) {
		// Caddy binds the new listener with SO_REUSEPORT beside the old one
		// and then closes the old one; Linux resets connections still in
		// the closed socket's accept queue. A client retries that, so does
		// this one, once, in the moments after a reload.
		e.t.Logf("%s %s %v after a reload: %v; retrying once", req.Method, req.URL, time.Since(e.reloaded).Round(time.Millisecond), err)
		e.client.CloseIdleConnections()
		res, err = e.client.Do(req)
	}
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

// replayableAfterReload reports whether req may be sent again because it
// failed within two seconds of a reload and has no body.
func (e *edge) replayableAfterReload(req *http.Request) bool {
	return !e.reloaded.IsZero() && time.Since(e.reloaded) < 2*time.Second &&
		(req.Body == nil || req.Body == http.NoBody) &&
		(req.Method == http.MethodGet || req.Method == http.MethodHead)
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

// purge calls POST /spark_cache/purge with the right token and returns "removed".
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

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
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

// load loads text as this edge's new Caddyfile and drops idle connections
// to the old servers.
func (e *edge) load(text string) {
	e.t.Helper()
	loadCaddyfile(e.t, text)
	e.reloaded = time.Now()
	e.client.CloseIdleConnections()
}
