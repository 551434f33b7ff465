package auth

// Integration harness: a real Caddy loaded from Caddyfile text, with
// spark_auth and spark_cache in front of a counting origin stub. Caddy is
// process-global: tests using the harness run sequentially.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"

	_ "github.com/spark-edge/spark/caddymodule/cache"
	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/testutil"
)

// secretEnv names the environment variable the test Caddyfiles read the
// HS256 secret from.
const secretEnv = "SPARK_AUTH_TEST_SECRET"

// testSecret is the HS256 secret behind {env.SPARK_AUTH_TEST_SECRET}.
const testSecret = "spark-auth-test-secret-0123456789abcdef"

// testKeys are the keys of a test: two Ed25519 (kids k1, k2), one RSA
// (kid rs1), their PEM files, and an old HS256 secret in a file.
type testKeys struct {
	ed1, ed2       ed25519.PrivateKey
	rsa            *rsa.PrivateKey
	ed1PEM, ed2PEM string // paths
	rsaPEM         string
	oldSecretFile  string
	oldSecret      string
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	dir := t.TempDir()
	k := &testKeys{rsa: rsaKey, oldSecret: "spark-auth-old-secret-0123456789abcdef"}
	_, k.ed1, _ = ed25519.GenerateKey(rand.Reader)
	_, k.ed2, _ = ed25519.GenerateKey(rand.Reader)
	k.ed1PEM = testutil.WritePublicKeyPEM(t, dir, "ed1.pem", k.ed1.Public())
	k.ed2PEM = testutil.WritePublicKeyPEM(t, dir, "ed2.pem", k.ed2.Public())
	k.rsaPEM = testutil.WritePublicKeyPEM(t, dir, "rsa.pem", &k.rsa.PublicKey)
	k.oldSecretFile = filepath.Join(dir, "old.secret")
	if err := os.WriteFile(k.oldSecretFile, []byte(k.oldSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// claims are a valid user token's claims for the test Caddyfiles (audience
// spark-api, lifetime within 1h).
func claims(user int64) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": fmt.Sprint(user), "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(), "aud": "spark-api"}
}

// sign signs c with method and key, with kid when non-empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, c)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// stubOrigin answers like the Spark origin for the paths the tests use and
// counts what reaches it.
type stubOrigin struct {
	srv   *httptest.Server
	mu    sync.Mutex
	count map[string]int    // "METHOD path" -> requests
	user  map[string]string // "METHOD path" -> X-Spark-User of the last one
	total atomic.Int64
}

func newStubOrigin(t *testing.T) *stubOrigin {
	t.Helper()
	o := &stubOrigin{count: map[string]int{}, user: map[string]string{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.Method + " " + r.URL.Path
		o.mu.Lock()
		o.count[k]++
		o.user[k] = userHeader(r)
		o.mu.Unlock()
		o.total.Add(1)
		h := w.Header()
		switch {
		case r.Method == http.MethodOptions:
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Headers", "Authorization")
			w.WriteHeader(http.StatusNoContent)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			h.Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, "written")
		case strings.HasSuffix(r.URL.Path, "/profile"), strings.Contains(r.URL.Path, "/photos/"):
			h.Set("Cache-Control", "public, max-age=300")
			_, _ = io.WriteString(w, "origin "+r.URL.Path)
		case r.URL.Path == "/api/me":
			h.Set("Cache-Control", "private, no-store")
			_, _ = io.WriteString(w, "me "+userHeader(r))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// userHeader is the X-Spark-User the edge set from {http.auth.user.id}:
// empty when the placeholder was unset (request_header leaves an unknown
// placeholder as written).
func userHeader(r *http.Request) string {
	v := r.Header.Get("X-Spark-User")
	if strings.HasPrefix(v, "{") {
		return ""
	}
	return v
}

func (o *stubOrigin) hits(method, path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[method+" "+path]
}

func (o *stubOrigin) userOf(method, path string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.user[method+" "+path]
}

// edge is a running Caddy with spark_auth and spark_cache.
type edge struct {
	t        *testing.T
	admin    string // http://127.0.0.1:port
	site     string // 127.0.0.1:port
	ports    []int
	origin   *stubOrigin
	reloaded time.Time // when the last reload returned
}

// siteCaddyfile renders the test site: spark_auth with authBlock's options on
// /api/* except GET/HEAD of photos (as the repo's Caddyfile), the user id
// handed to the origin in X-Spark-User, spark_cache, the proxy. spark_auth
// is written after spark_cache: the directive order puts it first.
func siteCaddyfile(adminPort, sitePort int, originAddr, authBlock string) string {
	return caddytest.GlobalOptions(adminPort, "") + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	@api {
		path /api/*
		not {
			method GET HEAD
			path /api/users/*/photos/*
		}
	}
	spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
	}
	request_header X-Spark-User {http.auth.user.id}
	spark_auth @api {
		%s
	}
	reverse_proxy %s
}
`, sitePort, authBlock, originAddr)
}

// defaultAuthBlock accepts the HS256 secret from the environment and the
// old one from a file (kid "old"), Ed25519 keys k1 and k2, RSA key rs1;
// audience spark-api; tokens of at most an hour.
func defaultAuthBlock(k *testKeys) string {
	return fmt.Sprintf(`hs256_secret {env.%s}
		hs256_secret {file.%s} old
		ed25519_key %s k1
		ed25519_key %s k2
		rs256_key %s rs1
		audience spark-api
		max_lifetime 1h
		leeway 5s`, secretEnv, k.oldSecretFile, k.ed1PEM, k.ed2PEM, k.rsaPEM)
}

// startEdge starts Caddy with authBlock in front of a new stub origin.
func startEdge(t *testing.T, authBlock string) *edge {
	t.Helper()
	t.Setenv(secretEnv, testSecret)
	o := newStubOrigin(t)
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string {
		return siteCaddyfile(ports[0], ports[1], o.srv.Listener.Addr().String(), authBlock)
	})
	return &edge{t: t, admin: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), site: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		ports: ports, origin: o}
}

// reload loads the site again with another auth block, as `caddy reload`.
func (e *edge) reload(authBlock string) {
	e.t.Helper()
	caddytest.Load(e.t, siteCaddyfile(e.ports[0], e.ports[1], e.origin.srv.Listener.Addr().String(), authBlock))
	e.reloaded = time.Now()
}

// do sends method target (the request-target exactly as given: no
// cleaning of // or ..) with header pairs; a repeated name adds another
// field. It speaks HTTP/1.1 on a connection of its own. Within two seconds
// of a reload a failed exchange is tried once more: Caddy binds the new
// listener beside the old one and closes the old one, and Linux resets the
// connections still in the closed socket's accept queue.
func (e *edge) do(method, target string, hdr ...string) *caddytest.Response {
	e.t.Helper()
	r, err := caddytest.Exchange(e.site, method, target, "", hdr...)
	if err != nil && !e.reloaded.IsZero() && time.Since(e.reloaded) < 2*time.Second {
		e.t.Logf("%s %s %v after a reload: %v; trying again", method, target, time.Since(e.reloaded).Round(time.Millisecond), err)
		r, err = caddytest.Exchange(e.site, method, target, "", hdr...)
	}
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// get sends GET path with the bearer token tok (none when empty).
func (e *edge) get(path, tok string) *caddytest.Response {
	e.t.Helper()
	return e.do(http.MethodGet, path, caddytest.Bearer(tok)...)
}

// signEd signs a user token with an Ed25519 key under kid.
func signEd(t testing.TB, key any, kid string, user int64) string {
	return sign(t, jwt.SigningMethodEdDSA, key, kid, claims(user))
}

// signHS signs a user token with an HS256 secret under kid.
func signHS(t testing.TB, secret, kid string, user int64) string {
	return sign(t, jwt.SigningMethodHS256, []byte(secret), kid, claims(user))
}
