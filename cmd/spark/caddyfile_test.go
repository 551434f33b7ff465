package main

// Tests of the repository's Caddyfile: loaded, with the environment the
// test sets, into a real Caddy in this process (with every module this
// binary builds in) in front of a stub origin that answers every path,
// /metrics and /healthz included, and records what reaches it.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// stubOrigin answers every request 200 with a cacheable body naming the
// path and the Host it was asked for, and records the paths — but for the
// event stream spark_realtime dials on its own (GET /internal/events),
// which it refuses unrecorded: no request of a client goes there.
type stubOrigin struct {
	srv *httptest.Server
	testutil.PathLog
}

func newStubOrigin(t *testing.T) *stubOrigin {
	t.Helper()
	o := &stubOrigin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/internal/events" {
			http.Error(w, "no event stream here", http.StatusNotFound)
			return
		}
		o.Record(r.URL.Path)
		switch {
		case r.URL.Path == "/api/matches/suggestions":
			w.Header().Set("Cache-Control", "private, max-age=120")
		default:
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "origin "+r.URL.Path+" for "+r.Host)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// repoEdge is a Caddy running the repository's Caddyfile.
type repoEdge struct {
	t      *testing.T
	port   int
	admin  string // http://127.0.0.1:port
	origin *stubOrigin
	token  string // a bearer token the edge accepts (SPARK_JWT_SECRET's)
	purge  string // SPARK_PURGE_TOKEN
	client *http.Client
}

// startRepoEdge loads ../../Caddyfile with SPARK_LISTEN=listenHost:<free
// port>, SPARK_ADMIN on loopback, SPARK_ORIGIN the stub, fresh secrets, and
// the extra environment given ("NAME=value").
func startRepoEdge(t *testing.T, listenHost string, env ...string) *repoEdge {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	e := &repoEdge{t: t, origin: newStubOrigin(t), purge: secret(t)}
	jwtSecret := secret(t)
	if e.token, err = origin.IssueToken(jwtSecret, 1, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPARK_ORIGIN", strings.TrimPrefix(e.origin.srv.URL, "http://"))
	t.Setenv("SPARK_PURGE_TOKEN", e.purge)
	t.Setenv("SPARK_JWT_SECRET", jwtSecret)
	t.Setenv("SPARK_EVENTS_TOKEN", "spark-caddyfile-test-events-token")
	t.Setenv("SPARK_HOSTS", "")
	os.Unsetenv("SPARK_HOSTS")
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	// The ports are free now, not necessarily when Caddy binds them:
	// another port on EADDRINUSE, a few times.
	for attempt := 1; ; attempt++ {
		ports := testutil.FreePorts(t, 2)
		e.port = ports[0]
		adminPort := ports[1]
		t.Setenv("SPARK_LISTEN", listenHost+":"+strconv.Itoa(e.port))
		t.Setenv("SPARK_ADMIN", "127.0.0.1:"+strconv.Itoa(adminPort))
		e.admin = "http://127.0.0.1:" + strconv.Itoa(adminPort)
		err := loadForTest(t, text)
		if err == nil {
			break
		}
		if attempt < 5 && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			continue
		}
		t.Fatalf("caddy.Load: %v", err)
	}
	tr := &http.Transport{DisableCompression: true}
	e.client = &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := caddy.Stop(); err != nil {
			t.Errorf("caddy.Stop: %v", err)
		}
	})
	return e
}

// loadForTest adapts the Caddyfile and loads it with two changes a test
// needs: the config is not persisted to the user's config directory, and
// only errors are logged.
func loadForTest(t *testing.T, text []byte) error {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(text, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt the repository's Caddyfile: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("Caddyfile warning: %s", w.String())
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	admin, _ := cfg["admin"].(map[string]any)
	if admin == nil {
		t.Fatalf("the Caddyfile sets no admin address: %s", cfgJSON)
	}
	admin["config"] = map[string]any{"persist": false}
	cfg["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}}
	patched, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return caddy.Load(patched, true)
}

func secret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// edgeResp is a response with its body read.
type edgeResp struct {
	status int
	header http.Header
	body   string
}

// do sends method path to the edge on 127.0.0.1 with the Host given ("":
// 127.0.0.1:port) and header pairs, with the edge's bearer token.
func (e *repoEdge) do(method, target, host string, hdr ...string) edgeResp {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(e.port)+target, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s (Host %q): %v", method, target, host, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return edgeResp{res.StatusCode, res.Header, string(b)}
}

func (e *repoEdge) adminGet(p string) string {
	e.t.Helper()
	res, err := e.client.Get(e.admin + p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s on the admin endpoint: %d %s", p, res.StatusCode, b)
	}
	return string(b)
}

// SPARK_LISTEN=127.0.0.1:<port> binds 127.0.0.1 only: the listener in the
// config is that address, and another loopback address of this machine
// (127.0.0.2) is refused. Before, the host in SPARK_LISTEN was only a Host
// match and the edge listened on every interface.
func TestRepoCaddyfileBindsOnlyTheListenHost(t *testing.T) {
	e := startRepoEdge(t, "127.0.0.1")
	if r := e.do("GET", "/api/users/2/profile", ""); r.status != 200 || r.body != "origin /api/users/2/profile for 127.0.0.1:"+strconv.Itoa(e.port) {
		t.Fatalf("GET through 127.0.0.1: %d %q", r.status, r.body)
	}
	var servers map[string]struct {
		Listen []string `json:"listen"`
	}
	if err := json.Unmarshal([]byte(e.adminGet("/config/apps/http/servers")), &servers); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:" + strconv.Itoa(e.port)
	for name, s := range servers {
		if len(s.Listen) != 1 || s.Listen[0] != want {
			t.Errorf("server %s listens on %v, want only %s", name, s.Listen, want)
		}
	}
	conn, err := net.DialTimeout("tcp", "127.0.0.2:"+strconv.Itoa(e.port), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("127.0.0.2:%d accepted a connection: the edge listens beyond 127.0.0.1", e.port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial 127.0.0.2:%d: %v, want connection refused", e.port, err)
	}
	// With a host in SPARK_LISTEN, Caddy matches only that host: another
	// Host reaches neither the cache nor the origin.
	before := len(e.origin.Paths())
	if r := e.do("GET", "/api/users/2/profile", "evil.example"); r.status == 200 && r.body != "" || r.header.Get("Cache-Status") != "" {
		t.Errorf("Host evil.example: %d %q Cache-Status %q", r.status, r.body, r.header.Get("Cache-Status"))
	}
	if n := len(e.origin.Paths()); n != before {
		t.Errorf("a request for another Host reached the origin")
	}
}

// The edge answers only SPARK_HOSTS (default localhost, 127.0.0.1, ::1):
// any other Host gets a 421 problem before the cache or the origin sees the
// request, so arbitrary Host values make no cache entries. Before, every
// Host was proxied and cached under its own key.
func TestRepoCaddyfileServesOnlyItsHosts(t *testing.T) {
	e := startRepoEdge(t, "")
	port := strconv.Itoa(e.port)
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "LocalHost:" + port, "localhost"} {
		r := e.do("GET", "/api/users/7/profile", host)
		// (Host names are case-insensitive: LocalHost hits localhost's entry.)
		if r.status != 200 || !strings.EqualFold(r.body, "origin /api/users/7/profile for "+host) || r.header.Get("Cache-Status") == "" {
			t.Errorf("Host %q: %d %q Cache-Status %q, want the origin's 200 through the cache", host, r.status, r.body, r.header.Get("Cache-Status"))
		}
	}
	before := len(e.origin.Paths())
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.:" + port, "localhost.evil.example:" + port,
		"127.0.0.2:" + port, "[::2]:" + port, "x" + strings.Repeat("a", 200) + ".test"} {
		for _, target := range []string{"/api/users/7/profile", "/static/app.js", "/metrics"} {
			r := e.do("GET", target, host)
			if r.status != http.StatusMisdirectedRequest || r.header.Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(r.body, `"status":421`) {
				t.Errorf("Host %q %s: %d %q %q, want a 421 problem", host, target, r.status, r.header.Get("Content-Type"), r.body)
			}
			if cs := r.header.Get("Cache-Status"); cs != "" {
				t.Errorf("Host %q %s went through the cache: Cache-Status %q", host, target, cs)
			}
		}
	}
	if seen := e.origin.Paths(); len(seen) != before {
		t.Errorf("requests for other hosts reached the origin: %v", seen[before:])
	}
}

// SPARK_HOSTS replaces the default list.
func TestRepoCaddyfileHostsFromEnvironment(t *testing.T) {
	e := startRepoEdge(t, "", "SPARK_HOSTS=api.spark.test *.edge.spark.test")
	for host, want := range map[string]int{
		"api.spark.test": 200, "eu.edge.spark.test": 200, "localhost": 421, "127.0.0.1": 421, "spark.test": 421,
	} {
		if r := e.do("GET", "/api/users/7/profile", host); r.status != want {
			t.Errorf("Host %q: %d, want %d", host, r.status, want)
		}
	}
}

// Only /api/* and /static/* reach the origin: its /metrics, /healthz and
// /readyz, and any other path, are a 404 problem at the edge, however the
// path is spelled. Before, every path was proxied (and /metrics cached).
func TestRepoCaddyfileRoutesOnlyAPIAndStatic(t *testing.T) {
	e := startRepoEdge(t, "127.0.0.1")
	for _, p := range []string{"/api/users/7/profile", "/static/app.js", "/API/users/7/profile"} {
		if r := e.do("GET", p, ""); r.status != 200 || !strings.HasPrefix(r.body, "origin ") {
			t.Errorf("GET %s: %d %q, want the origin's answer", p, r.status, r.body)
		}
	}
	for _, p := range []string{
		"/metrics", "/healthz", "/readyz", "/", "/favicon.ico", "/api", "/apix/users", "/static", "/staticx",
		"/metrics?format=text", "//metrics", "/./metrics", "/api/../metrics", "/static/../healthz", "/api/%2e%2e/metrics",
		"/%2fmetrics", "/x/../api/../readyz",
	} {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			r := e.do(method, p, "")
			if r.status == 200 || r.status >= 500 {
				t.Errorf("%s %s: %d %q, want a refusal", method, p, r.status, r.body)
			}
			if method == "GET" && r.status == 404 && !strings.Contains(r.body, `"status":404`) {
				t.Errorf("GET %s: 404 %q, want a problem document", p, r.body)
			}
		}
	}
	for _, p := range e.origin.Paths() {
		clean := path.Clean(p)
		if !strings.HasPrefix(strings.ToLower(clean), "/api/") && !strings.HasPrefix(strings.ToLower(clean), "/static/") {
			t.Errorf("the origin saw %q", p)
		}
	}
}

// The admin API's config holds the purge token's placeholder, never the
// token (SPARK_PURGE_TOKEN used to be pasted in when the Caddyfile was
// adapted), and the token still purges.
func TestRepoCaddyfileSecretsNotInConfig(t *testing.T) {
	e := startRepoEdge(t, "127.0.0.1")
	for _, p := range []string{"/config/", "/config/apps/http"} {
		cfg := e.adminGet(p)
		if strings.Contains(cfg, e.purge) {
			t.Errorf("GET %s holds SPARK_PURGE_TOKEN", p)
		}
		if p == "/config/" && !strings.Contains(cfg, "{env.SPARK_PURGE_TOKEN}") {
			t.Errorf("GET /config/ lacks the placeholder {env.SPARK_PURGE_TOKEN}")
		}
	}
	e.do("GET", "/api/users/9/profile", "")
	if r := e.do("GET", "/api/users/9/profile", ""); !strings.Contains(r.header.Get("Cache-Status"), "hit") {
		t.Fatalf("second GET: Cache-Status %q, want a hit", r.header.Get("Cache-Status"))
	}
	req, _ := http.NewRequest("POST", e.admin+"/spark_cache/purge", strings.NewReader(`{"keys":["/api/users/9/profile"]}`))
	req.Header.Set("Authorization", "Bearer "+e.purge)
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"removed":1}` {
		t.Fatalf("purge with SPARK_PURGE_TOKEN: %d %s", res.StatusCode, body)
	}
}

// The suggestions rule varies on Authorization only: a client-sent
// Location header (which the app never sends) makes no variant of its own.
// Before, each Location value was a separate entry.
func TestRepoCaddyfileSuggestionsIgnoreLocation(t *testing.T) {
	e := startRepoEdge(t, "127.0.0.1")
	const sugg = "/api/matches/suggestions?limit=5"
	if r := e.do("GET", sugg, "", "Location", "52.52,13.40"); r.status != 200 || !strings.Contains(r.header.Get("Cache-Status"), "stored") {
		t.Fatalf("first suggestions: %d Cache-Status %q", r.status, r.header.Get("Cache-Status"))
	}
	for _, loc := range []string{"48.85,2.35", "x", ""} {
		if r := e.do("GET", sugg, "", "Location", loc); !strings.Contains(r.header.Get("Cache-Status"), "hit") {
			t.Errorf("suggestions with Location %q: Cache-Status %q, want a hit", loc, r.header.Get("Cache-Status"))
		}
	}
	if n := len(e.origin.Paths()); n != 1 {
		t.Errorf("the origin answered %d suggestions requests, want 1", n)
	}
}
