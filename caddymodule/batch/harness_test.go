package batch

// Integration harness: a real Caddy loaded from Caddyfile text with
// spark_batch on /api/batch and, for everything else, spark_auth +
// spark_cache + reverse_proxy to a counting origin stub. Caddy is
// process-global: tests using the harness run sequentially.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/spark-edge/spark/caddymodule/auth"
	_ "github.com/spark-edge/spark/caddymodule/cache"
	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/authtoken"
)

// secretEnv names the environment variable the test Caddyfile reads the
// HS256 secret from.
const secretEnv = "SPARK_BATCH_TEST_SECRET"

// testSecret is the HS256 secret behind {env.SPARK_BATCH_TEST_SECRET}.
const testSecret = "spark-batch-test-secret-0123456789abcdef"

// token is a valid bearer token of user id.
func token(t testing.TB, id int64) string {
	t.Helper()
	tok, err := authtoken.Issue([]byte(testSecret), id, authtoken.IssueOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stubOrigin answers like the Spark origin for the paths the tests use and
// records what reaches it.
type stubOrigin struct {
	srv      *httptest.Server
	release  chan struct{} // closed at cleanup: /api/slow returns
	gate     chan struct{} // closed by a test: GET /api/gate returns
	gated    chan struct{} // closed when GET /api/gate arrived
	gateOnce sync.Once

	mu               sync.Mutex
	count            map[string]int // "METHOD path" -> requests
	total            int
	writes           []string // paths of unsafe requests, in arrival order
	inUnsafe         int      // unsafe requests being served
	maxUnsafeOverlap int
}

func newStubOrigin(t *testing.T) *stubOrigin {
	t.Helper()
	o := &stubOrigin{count: map[string]int{}, release: make(chan struct{}), gate: make(chan struct{}), gated: make(chan struct{})}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(func() {
		close(o.release)
		o.srv.Close()
	})
	return o
}

func (o *stubOrigin) serve(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("X-Spark-User")
	if strings.HasPrefix(user, "{") {
		user = ""
	}
	o.mu.Lock()
	o.count[r.Method+" "+r.URL.Path]++
	o.total++
	unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead
	if unsafe {
		o.writes = append(o.writes, r.URL.Path)
		o.inUnsafe++
		o.maxUnsafeOverlap = max(o.maxUnsafeOverlap, o.inUnsafe)
	}
	o.mu.Unlock()
	if unsafe {
		defer func() {
			o.mu.Lock()
			o.inUnsafe--
			o.mu.Unlock()
		}()
	}
	h := w.Header()
	switch {
	case r.URL.Path == "/api/gate":
		o.gateOnce.Do(func() { close(o.gated) })
		select {
		case <-o.gate:
		case <-o.release:
		}
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"gate":"open"}`)
	case r.URL.Path == "/api/slow":
		select {
		case <-r.Context().Done():
		case <-o.release:
		}
		h.Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "late")
	case unsafe:
		body, _ := io.ReadAll(r.Body)
		if strings.HasSuffix(r.URL.Path, "/first") {
			// Gives a parallel runner every chance to overtake it.
			time.Sleep(50 * time.Millisecond)
		}
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "user": user,
			"content_type": r.Header.Get("Content-Type"), "body": string(body)})
	case strings.HasSuffix(r.URL.Path, "/profile"):
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Tags", "profile:1")
		h.Set("ETag", `"p1"`)
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	case strings.Contains(r.URL.Path, "/photos/"):
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Type", "image/jpeg")
		_, _ = w.Write([]byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x80, 0x81})
	case r.URL.Path == "/api/me":
		h.Set("Cache-Control", "private, max-age=300")
		h.Set("Vary", "Authorization")
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"user": user, "accept": r.Header.Get("Accept"),
			"save_data": r.Header.Get("Save-Data")})
	case r.URL.Path == "/api/big":
		h.Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, strings.Repeat("x", 8<<10))
	case r.URL.Path == "/api/text":
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "plain <text> & more")
	default:
		http.NotFound(w, r)
	}
}

func (o *stubOrigin) hits(method, path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[method+" "+path]
}

func (o *stubOrigin) totalHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

// edge is a running Caddy with spark_batch, spark_auth and spark_cache.
type edge struct {
	t      *testing.T
	admin  string // http://127.0.0.1:port
	site   string // 127.0.0.1:port
	origin *stubOrigin
}

// siteCaddyfile renders the test site. batchBlock is spark_batch's options.
func siteCaddyfile(adminPort, sitePort int, originAddr, batchBlock string) string {
	return caddytest.GlobalOptions(adminPort, "") + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	@batch path /api/batch
	handle @batch {
		spark_batch {
			%s
		}
	}
	handle {
		@api {
			path /api/*
			not {
				method GET HEAD
				path /api/users/*/photos/*
			}
		}
		spark_auth @api {
			hs256_secret {env.%s}
		}
		request_header X-Spark-User {http.auth.user.id}
		spark_cache {
			capacity 16MiB
			max_entry_size 64KiB
			rule /api/me {
				ttl 5m
				private
				vary Authorization
			}
		}
		reverse_proxy %s
	}
}
`, sitePort, batchBlock, secretEnv, originAddr)
}

// defaultBatchBlock are the options most tests run with.
const defaultBatchBlock = `max_requests 8
			max_body_size 1KiB
			max_batch_size 16KiB
			max_response_size 4KiB
			concurrency 3
			timeout 5s
			streaming`

// startEdge starts Caddy with batchBlock in front of a new stub origin.
func startEdge(t *testing.T, batchBlock string) *edge {
	t.Helper()
	t.Setenv(secretEnv, testSecret)
	o := newStubOrigin(t)
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string {
		return siteCaddyfile(ports[0], ports[1], o.srv.Listener.Addr().String(), batchBlock)
	})
	return &edge{t: t, admin: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), site: fmt.Sprintf("127.0.0.1:%d", ports[1]), origin: o}
}

// do sends one request with header pairs.
func (e *edge) do(method, target, body string, hdr ...string) *caddytest.Response {
	e.t.Helper()
	r, err := caddytest.Exchange(e.site, method, target, body, hdr...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// get sends GET path with the bearer token tok (none when empty).
func (e *edge) get(path, tok string) *caddytest.Response {
	e.t.Helper()
	return e.do(http.MethodGet, path, "", caddytest.Bearer(tok)...)
}

// sub is a sub-request as a test writes it.
type sub struct {
	ID      string            `json:"id"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
	// Keep is the sub-request's response_headers.
	Keep []string `json:"response_headers,omitempty"`
}

// subResponse is a sub-response as the client reads it.
type subResponse struct {
	ID           string            `json:"id"`
	Index        int               `json:"index"`
	Status       int               `json:"status"`
	Headers      map[string]string `json:"headers"`
	Body         json.RawMessage   `json:"body"`
	BodyEncoding string            `json:"body_encoding"`
}

// batchBody is the JSON of a batch of subs.
func batchBody(t testing.TB, subs ...sub) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"requests": subs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// batch posts subs with the token tok (none when empty) and extra header
// pairs; it returns the raw response.
func (e *edge) batch(tok string, subs []sub, hdr ...string) *caddytest.Response {
	e.t.Helper()
	h := append(append([]string{"Content-Type", "application/json"}, hdr...), caddytest.Bearer(tok)...)
	return e.do(http.MethodPost, "/api/batch", batchBody(e.t, subs...), h...)
}

// batchOK posts subs and decodes a 200 answer's sub-responses.
func (e *edge) batchOK(tok string, subs ...sub) []subResponse {
	e.t.Helper()
	r := e.batch(tok, subs)
	if r.Status != http.StatusOK {
		e.t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "private, no-store" {
		e.t.Errorf("batch Cache-Control %q, want private, no-store", cc)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("batch Content-Type %q", ct)
	}
	var out struct {
		Responses []subResponse `json:"responses"`
	}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		e.t.Fatalf("batch response: %v\n%s", err, r.Body)
	}
	if len(out.Responses) != len(subs) {
		e.t.Fatalf("%d sub-responses for %d sub-requests: %s", len(out.Responses), len(subs), r.Body)
	}
	for i, s := range subs {
		if out.Responses[i].ID != s.ID || out.Responses[i].Index != i {
			e.t.Fatalf("sub-response %d is %q (index %d), want %q: out of order", i, out.Responses[i].ID, out.Responses[i].Index, s.ID)
		}
	}
	return out.Responses
}

// field decodes a JSON object body and returns its key.
func field(t testing.TB, body json.RawMessage, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if v, ok := m[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}
