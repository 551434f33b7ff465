package cache

// Integration tests of issue 10's edge half: deny lists, authorized fills,
// the contract's fields on every path. Caddy's basic_auth with numeric user
// names stands in for spark_auth: both set {http.auth.user.id}.

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPasswordHash is bcrypt (cost 4) of "pw", every test user's password.
const testPasswordHash = "$2a$04$FMkb0JmOOgpOdUqV6l7/PuzD5QCmka12bkbIfHdl6wVElGpagOBYK"

// withBasicAuth puts basic_auth for the numeric users before the cache
// block (directive order puts it there anyway) for requests that carry
// Authorization; requests without one are unknown viewers.
func withBasicAuth(cacheBlock string, users ...string) string {
	var b strings.Builder
	b.WriteString("@authed header Authorization *\n\tbasic_auth @authed {\n")
	for _, u := range users {
		b.WriteString("\t\t" + u + " " + testPasswordHash + "\n")
	}
	b.WriteString("\t}\n\t")
	return b.String() + cacheBlock
}

// as returns the header pair that authenticates as user.
func as(user string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw"))}
}

// viewerOf is the user a request to the origin authenticated as, or "".
func viewerOf(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return u
}

// noContractFields fails when a response to a client carries a field that
// is for the edge only.
func noContractFields(t *testing.T, what string, h http.Header) {
	t.Helper()
	for _, f := range []string{"Cache-Tags", "Spark-Deny-Users", "Spark-Purge"} {
		if v, ok := h[f]; ok {
			t.Errorf("%s: %s %q reached the client", what, f, v)
		}
	}
}

// expectDenied checks a response the edge forwarded because the stored one
// refused the viewer.
func expectDenied(t *testing.T, what string, r *resp, status int) {
	t.Helper()
	expectForwarded(t, what, r, status)
	if !strings.Contains(r.cacheStatus(), "detail=denied") {
		t.Errorf("%s: Cache-Status %q, want detail=denied", what, r.cacheStatus())
	}
}

// expectForwarded checks a response that came from the origin, not from
// the stored profile. (An anonymous request for an entry an authorized
// request filled is a plain miss: the entry is not even selected.)
func expectForwarded(t *testing.T, what string, r *resp, status int) {
	t.Helper()
	if r.status != status || r.isHit() || status != 200 && strings.Contains(r.body, "profile 1") {
		t.Errorf("%s: %d %q (Cache-Status %q), want the origin's %d", what, r.status, r.body, r.cacheStatus(), status)
	}
	noContractFields(t, what, r.header)
}

// TestIntegrationDenyList: a stored response with Spark-Deny-Users is never
// served to a viewer in the list or to an unknown viewer, on any path that
// serves stored responses; everyone else gets it from the cache.
func TestIntegrationDenyList(t *testing.T) {
	e := startEdge(t, withBasicAuth(defaultCacheBlock, "5", "17", "42", "977"))
	var failing atomic.Bool
	var late atomic.Bool // /d/late: the 304 brings a deny list
	var slowOnce sync.Once
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		open := r.URL.Path == "/d/late" || r.URL.Path == "/d/coalesce" // anonymous readers allowed
		switch {
		case failing.Load():
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case v == "" && !open:
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		case v == "17" || v == "42":
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "no such profile for "+v, http.StatusNotFound)
			return
		}
		cc := map[string]string{
			"/d/fresh":    "public, max-age=100",
			"/d/swr":      "public, max-age=1, stale-while-revalidate=100",
			"/d/sie":      "public, max-age=1, stale-if-error=100",
			"/d/reval":    "public, max-age=1",
			"/d/late":     "public, max-age=1",
			"/d/coalesce": "public, max-age=100",
		}[r.URL.Path]
		if r.URL.Path == "/d/late" && late.Load() {
			cc = "public, max-age=100"
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("ETag", `"p1"`)
		if r.URL.Path != "/d/late" || late.Load() {
			w.Header().Set("Spark-Deny-Users", "17 42")
		}
		if r.Header.Get("If-None-Match") == `"p1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.URL.Path == "/d/coalesce" {
			slowOnce.Do(func() { time.Sleep(300 * time.Millisecond) })
		}
		_, _ = io.WriteString(w, "profile 1")
	})
	fill := func(p string) {
		t.Helper()
		r := e.get(p, as("5")...)
		if r.status != 200 || !strings.Contains(r.cacheStatus(), "stored") {
			t.Fatalf("fill %s: %d %q", p, r.status, r.cacheStatus())
		}
		noContractFields(t, "fill "+p, r.header)
	}

	t.Run("fresh hit, HEAD, conditional", func(t *testing.T) {
		fill("/d/fresh")
		for _, v := range []string{"5", "977"} {
			r := e.get("/d/fresh", as(v)...)
			expect(t, "allowed "+v, r, 200, "profile 1", true)
			noContractFields(t, "allowed "+v, r.header)
			r = e.get("/d/fresh", append(as(v), "If-None-Match", `"p1"`)...)
			expect(t, "allowed conditional "+v, r, 304, "", true)
		}
		for _, v := range []string{"17", "42"} {
			expectDenied(t, "GET as "+v, e.get("/d/fresh", as(v)...), 404)
			expectDenied(t, "HEAD as "+v, e.do("HEAD", "/d/fresh", as(v)...), 404)
			expectDenied(t, "conditional as "+v, e.get("/d/fresh", append(as(v), "If-None-Match", `"p1"`)...), 404)
		}
		expectForwarded(t, "anonymous GET", e.get("/d/fresh"), 401)
		expectForwarded(t, "anonymous HEAD", e.do("HEAD", "/d/fresh"), 401)
		expectForwarded(t, "anonymous conditional", e.get("/d/fresh", "If-None-Match", `"p1"`), 401)
		// only-if-cached: nothing the cache may serve, and it may not ask.
		if r := e.get("/d/fresh", append(as("17"), "Cache-Control", "only-if-cached")...); r.status != 504 {
			t.Errorf("only-if-cached as 17: %d %q", r.status, r.body)
		}
		if n := e.origin.hits("HEAD", "/d/fresh"); n != 3 {
			t.Errorf("origin saw %d HEADs, want 3 (each refused one)", n)
		}
	})

	t.Run("stale paths", func(t *testing.T) {
		for _, p := range []string{"/d/swr", "/d/sie", "/d/reval"} {
			fill(p)
		}
		time.Sleep(1100 * time.Millisecond) // max-age=1 has passed
		expect(t, "swr as 5", e.get("/d/swr", as("5")...), 200, "profile 1", true)
		expectDenied(t, "swr as 17", e.get("/d/swr", as("17")...), 404)
		expectForwarded(t, "swr anonymous", e.get("/d/swr"), 401)
		expectDenied(t, "revalidation as 42", e.get("/d/reval", as("42")...), 404)
		expectForwarded(t, "revalidation anonymous", e.get("/d/reval"), 401)
		failing.Store(true)
		defer failing.Store(false)
		r := e.get("/d/sie", as("5")...)
		if r.status != 200 || !strings.Contains(r.cacheStatus(), "stale-if-error") {
			t.Errorf("stale-if-error as 5: %d %q", r.status, r.cacheStatus())
		}
		expectDenied(t, "stale-if-error as 17", e.get("/d/sie", as("17")...), 503)
		expectForwarded(t, "stale-if-error anonymous", e.get("/d/sie"), 503)
	})

	t.Run("a 304 brings a deny list", func(t *testing.T) {
		r := e.get("/d/late")
		if r.status != 200 || !strings.Contains(r.cacheStatus(), "stored") {
			t.Fatalf("anonymous fill: %d %q", r.status, r.cacheStatus())
		}
		time.Sleep(1100 * time.Millisecond)
		late.Store(true)
		before := e.origin.hits("GET", "/d/late")
		// The anonymous request revalidates; the 304 now carries a deny
		// list, so the refreshed entry refuses it: it is forwarded again.
		expectDenied(t, "anonymous after the 304", e.get("/d/late"), 200)
		if n := e.origin.hits("GET", "/d/late") - before; n != 2 {
			t.Errorf("origin saw %d requests, want 2 (the revalidation, then the refused viewer's own)", n)
		}
		expect(t, "allowed viewer after the 304", e.get("/d/late", as("5")...), 200, "profile 1", true)
		expectDenied(t, "denied viewer after the 304", e.get("/d/late", as("17")...), 404)
	})

	t.Run("coalesced waiters", func(t *testing.T) {
		// Anonymous readers share one flight; the response the leader
		// fetched carries a deny list, so no waiter may be answered from it.
		const clients = 10
		leaders := 0
		for i, r := range e.getConcurrently(clients, "/d/coalesce", nil) {
			noContractFields(t, fmt.Sprint("client ", i), r.header)
			switch {
			case r.isHit():
				t.Errorf("client %d: served from the cache to an unknown viewer: %q", i, r.cacheStatus())
			case strings.Contains(r.cacheStatus(), "detail=denied"):
			case strings.Contains(r.cacheStatus(), "stored"):
				leaders++
			default:
				t.Errorf("client %d: Cache-Status %q", i, r.cacheStatus())
			}
		}
		if leaders != 1 {
			t.Errorf("%d responses stored, want 1", leaders)
		}
		if n := e.origin.hits("GET", "/d/coalesce"); n != clients {
			t.Errorf("origin saw %d requests, want %d (the fill, then every refused viewer)", n, clients)
		}
	})
}

// TestIntegrationAuthorizedFillNeverAnonymous: a shared entry an
// authorized request filled is never served to a request without
// Authorization (the origin answers those 401), whatever the response
// said; one an anonymous request filled serves authorized ones when public.
func TestIntegrationAuthorizedFillNeverAnonymous(t *testing.T) {
	e := startEdge(t, withBasicAuth(defaultCacheBlock, "5", "17"))
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a/closed" && viewerOf(r) == "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=100")
		_, _ = io.WriteString(w, "profile for members")
	})
	expect(t, "member fill", e.get("/a/closed", as("5")...), 200, "profile for members", false)
	expect(t, "another member", e.get("/a/closed", as("17")...), 200, "profile for members", true)
	for i := 0; i < 2; i++ {
		r := e.get("/a/closed")
		if r.status != 401 || r.isHit() {
			t.Errorf("anonymous #%d: %d %q (%q), want the origin's 401", i, r.status, r.body, r.cacheStatus())
		}
	}
	expect(t, "member after the anonymous requests", e.get("/a/closed", as("5")...), 200, "profile for members", true)

	expect(t, "anonymous fill", e.get("/a/open"), 200, "profile for members", false)
	expect(t, "member from the anonymous fill", e.get("/a/open", as("5")...), 200, "profile for members", true)
	expect(t, "anonymous hit", e.get("/a/open"), 200, "profile for members", true)
}

// TestIntegrationL2DenyListAcrossEdges: the deny list travels with the
// entry through Redis, so an edge that finds it in L2 refuses the same
// viewers. (No authentication handler here: every viewer is unknown.)
func TestIntegrationL2DenyListAcrossEdges(t *testing.T) {
	a, b := twoEdges(t, testRedis(t), "2s")
	a.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Spark-Deny-Users", "17")
		_, _ = io.WriteString(w, "profile 1")
	})
	if _, cs, _ := getStatus(t, a, "/users/1/profile"); !strings.Contains(cs, "stored") {
		t.Fatalf("edge A fill: %q", cs)
	}
	for _, e := range []*edge{b, a} {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer someone"}} {
			r := e.get("/users/1/profile", hdr...)
			expectDenied(t, e.site+" unknown viewer", r, 200)
		}
	}
	if n := a.origin.hits("GET", "/users/1/profile"); n != 5 {
		t.Errorf("origin saw %d requests, want 5 (the fill and each refused request)", n)
	}
}
