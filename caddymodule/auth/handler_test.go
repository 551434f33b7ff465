package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

// newTestHandler provisions a handler with the test's HS256 secret and
// Ed25519 key k1.
func newTestHandler(t testing.TB, k *testKeys) *Handler {
	t.Helper()
	h := &Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: testSecret}}, Ed25519Keys: []PublicKey{{File: k.ed1PEM, KeyID: "k1"}}, Audience: "spark-api"}}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	return h
}

// request returns a request carrying a Caddy replacer, as Caddy's server
// prepares them.
func request(method, target string, hdr ...string) (*http.Request, *caddy.Replacer) {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	repl := caddy.NewReplacer()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)), repl
}

// nextCounter is a next handler counting its calls.
type nextCounter struct{ n int }

func (c *nextCounter) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	c.n++
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func TestServeHTTPSetsUserPlaceholder(t *testing.T) {
	k := newTestKeys(t)
	h := newTestHandler(t, k)
	var next nextCounter
	for _, user := range []int64{42, 42, 4242, 42 + 4096} { // a repeat, and two ids sharing a slot
		r, repl := request("GET", "/api/me", "Authorization", "Bearer "+signEd(t, k.ed1, "k1", user))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, &next); err != nil {
			t.Fatal(err)
		}
		if got, _ := repl.GetString(UserIDPlaceholder); w.Code != http.StatusNoContent || got != itoa(user) {
			t.Fatalf("user %d: status %d, placeholder %q", user, w.Code, got)
		}
		if v, _ := repl.Get(UserIDPlaceholder); v.(string) != itoa(user) {
			t.Fatalf("placeholder holds %T %v", v, v)
		}
	}
	if next.n != 4 {
		t.Fatalf("next ran %d times", next.n)
	}
}

func TestServeHTTPRefuses(t *testing.T) {
	k := newTestKeys(t)
	h := newTestHandler(t, k)
	var next nextCounter
	for name, hdr := range map[string][]string{
		"none":      nil,
		"garbage":   {"Authorization", "Bearer x.y.z"},
		"two":       {"Authorization", "Bearer " + signEd(t, k.ed1, "k1", 1), "Authorization", "Bearer " + signEd(t, k.ed1, "k1", 2)},
		"no origin": {"Access-Control-Request-Method", "GET"}, // OPTIONS below: not a preflight without Origin
	} {
		method := "GET"
		if name == "no origin" {
			method = "OPTIONS"
		}
		r, repl := request(method, "/api/users/2/profile?x=1", hdr...)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, &next); err != nil {
			t.Fatal(err)
		}
		want := `{"type":"/problems/unauthenticated","title":"Unauthorized","status":401,"detail":"a valid bearer token is required","instance":"/api/users/2/profile"}` + "\n"
		if w.Code != 401 || w.Body.String() != want || w.Header().Get("Content-Type") != "application/problem+json" ||
			w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Fatalf("%s: %d %v %q", name, w.Code, w.Header(), w.Body.String())
		}
		if _, ok := repl.Get(UserIDPlaceholder); ok {
			t.Fatalf("%s: placeholder set on a refusal", name)
		}
	}
	if next.n != 0 {
		t.Fatalf("next ran %d times", next.n)
	}
	// A preflight passes, without a user.
	r, repl := request("OPTIONS", "/api/me", "Origin", "https://app.example", "Access-Control-Request-Method", "PUT")
	if err := h.ServeHTTP(httptest.NewRecorder(), r, &next); err != nil || next.n != 1 {
		t.Fatalf("preflight: %v, next %d", err, next.n)
	}
	if _, ok := repl.Get(UserIDPlaceholder); ok {
		t.Fatal("placeholder set on a preflight")
	}
}

// discardWriter is a ResponseWriter that keeps nothing (for allocation
// counts).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// memoHit returns a handler, a request with a remembered token and a next
// handler doing nothing.
func memoHit(t testing.TB) (*Handler, *http.Request, http.ResponseWriter, caddyhttp.Handler) {
	k := newTestKeys(t)
	h := newTestHandler(t, k)
	r, _ := request("GET", "/api/users/2/profile", "Authorization", "Bearer "+signEd(t, k.ed1, "k1", 977))
	w := &discardWriter{h: http.Header{}}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return h, r, w, next
}

// On a memo hit the handler allocates nothing of its own.
func TestServeHTTPMemoHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	h, r, w, next := memoHit(t)
	if n := testing.AllocsPerRun(200, func() { _ = h.ServeHTTP(w, r, next) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// BenchmarkServeHTTPMemoHit: a request whose token was verified before.
func BenchmarkServeHTTPMemoHit(b *testing.B) {
	h, r, w, next := memoHit(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
