package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func ptr[T any](v T) *T { return &v }

func TestResolve(t *testing.T) {
	def := Policy{
		TTL:                  caddy.Duration(time.Minute),
		Private:              ptr(true),
		Vary:                 []string{"Accept-Encoding"},
		ETag:                 ptr(true),
		StaleWhileRevalidate: ptr(caddy.Duration(10 * time.Second)),
		StaleIfError:         ptr(caddy.Duration(time.Hour)),
		IgnoreQuery:          []string{"utm_*"},
	}
	t.Run("empty rule takes every default", func(t *testing.T) {
		p := resolve(Policy{}, def)
		if p.ttl != time.Minute || !p.private || !p.etag || p.swr != 10*time.Second || p.sie != time.Hour ||
			strings.Join(p.vary, ",") != "accept-encoding" || strings.Join(p.ignoreQuery, ",") != "utm_*" {
			t.Errorf("resolve = %+v", p)
		}
	})
	t.Run("rule fields win, including explicit false and zero", func(t *testing.T) {
		p := resolve(Policy{
			TTL:                  caddy.Duration(5 * time.Minute),
			Private:              ptr(false),
			Vary:                 []string{"Location", "Authorization", "location"},
			ETag:                 ptr(false),
			StaleWhileRevalidate: ptr(caddy.Duration(0)),
			StaleIfError:         ptr(caddy.Duration(2 * time.Second)),
			IgnoreQuery:          []string{"fbclid"},
		}, def)
		if p.ttl != 5*time.Minute || p.private || p.etag || p.swr != 0 || p.sie != 2*time.Second ||
			strings.Join(p.vary, ",") != "authorization,location" || strings.Join(p.ignoreQuery, ",") != "fbclid" {
			t.Errorf("resolve = %+v", p)
		}
	})
	t.Run("no defaults", func(t *testing.T) {
		p := resolve(Policy{}, Policy{})
		if p.ttl != 0 || p.private || p.etag || p.swr != -1 || p.sie != -1 || p.vary != nil || p.ignoreQuery != nil {
			t.Errorf("resolve = %+v", p)
		}
	})
}

func TestPolicyFor(t *testing.T) {
	rules := []Rule{
		{Path: "/api/users/*/profile", Policy: Policy{TTL: caddy.Duration(5 * time.Minute), ETag: ptr(true)}},
		{Path: "/api/suggestions*", Policy: Policy{TTL: caddy.Duration(2 * time.Minute), Private: ptr(true), Vary: []string{"Authorization", "Location"}}},
		{Path: "/photos/*", Policy: Policy{TTL: caddy.Duration(24 * time.Hour)}},
		{Path: "/static/*", Policy: Policy{TTL: caddy.Duration(30 * 24 * time.Hour)}},
		{Path: "/api/*", Policy: Policy{}},
	}
	def := Policy{StaleIfError: ptr(caddy.Duration(time.Minute))}
	c := newCache(nil, nil, nil, def, rules, testEncodings, 1<<20)
	cases := []struct {
		path string
		ttl  time.Duration
		priv bool
	}{
		{"/api/users/7/profile", 5 * time.Minute, false},
		{"/api/suggestions", 2 * time.Minute, true},
		{"/api/suggestions/near", 2 * time.Minute, true},
		{"/photos/a/b.jpg", 24 * time.Hour, false},
		{"/static/app.js", 30 * 24 * time.Hour, false},
		{"/api/users/7", 0, false},
		{"/other", 0, false},
	}
	for _, tc := range cases {
		p := policyOf(t, c, requestFor(http.MethodGet, tc.path))
		if p.ttl != tc.ttl || p.private != tc.priv || p.sie != time.Minute {
			t.Errorf("policyFor(%q) = %+v; want ttl %v private %v sie 1m", tc.path, *p, tc.ttl, tc.priv)
		}
	}
	if p := policyOf(t, c, requestFor(http.MethodGet, "/other")); p != &c.def {
		t.Errorf("unmatched path does not get the default policy")
	}
}

// requestFor is a request for target with a replacer, as Caddy's server
// makes them (matchers need one).
func requestFor(method, target string, header ...string) *http.Request {
	r := httptest.NewRequest(method, "http://spark.test"+target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return withReplacer(r)
}

func policyOf(t *testing.T, c *Cache, r *http.Request) *policy {
	t.Helper()
	p, err := c.policyFor(r)
	if err != nil {
		t.Fatalf("policyFor(%s): %v", r.URL, err)
	}
	return p
}

// A rule's matcher sets select with Caddy's matchers: every matcher of a
// set, any set of the rule. The path shorthand has Caddy's path matcher
// semantics (case-insensitive, on the cleaned path).
func TestPolicyForMatchers(t *testing.T) {
	ttl := func(d time.Duration) Policy { return Policy{TTL: caddy.Duration(d)} }
	rules := []Rule{
		{matcherSets: caddyhttp.MatcherSets{
			{pathMatcher("/api/users/*/photos/*"), caddyhttp.MatchHeader{"Save-Data": {"on"}}},
		}, Policy: ttl(time.Minute)},
		{matcherSets: caddyhttp.MatcherSets{
			{caddyhttp.MatchMethod{"HEAD"}},
			{caddyhttp.MatchHeader{"X-Preview": {"1"}}},
		}, Policy: ttl(2 * time.Minute)},
		{Path: "/api/users/*/profile", Policy: ttl(5 * time.Minute)},
	}
	c := newCache(nil, nil, nil, Policy{}, rules, testEncodings, 1<<20)
	for _, tc := range []struct {
		r   *http.Request
		ttl time.Duration
	}{
		{requestFor("GET", "/api/users/1/photos/a.jpg", "Save-Data", "on"), time.Minute},
		{requestFor("GET", "/api/users/1/photos/a.jpg"), 0},
		{requestFor("HEAD", "/api/users/1/photos/a.jpg"), 2 * time.Minute},
		{requestFor("GET", "/x", "X-Preview", "1"), 2 * time.Minute},
		{requestFor("GET", "/api/users/1/profile"), 5 * time.Minute},
		{requestFor("GET", "/API/Users/1/Profile"), 5 * time.Minute},
		{requestFor("GET", "/api/users/1/../2/profile"), 5 * time.Minute},
		{requestFor("GET", "/api/users/1/profile/x"), 0},
	} {
		if p := policyOf(t, c, tc.r); p.ttl != tc.ttl {
			t.Errorf("%s %s %v: ttl %v, want %v", tc.r.Method, tc.r.URL.Path, tc.r.Header, p.ttl, tc.ttl)
		}
	}
	// Purges and invalidations know only the URI: a bare GET of it.
	u, _ := url.Parse("/api/users/1/profile?b=1")
	if p := c.policyForURI(context.Background(), "spark.test", u); p.ttl != 5*time.Minute {
		t.Errorf("policyForURI: ttl %v", p.ttl)
	}
}

func TestRuleValidate(t *testing.T) {
	good := []Rule{
		{Path: "*"},
		{Path: "*.jpg"},
		{matcherSets: caddyhttp.MatcherSets{{caddyhttp.MatchMethod{"GET"}}}},
		{Path: "/static/*"},
		{Path: "/api/users/*/profile", Policy: Policy{TTL: caddy.Duration(time.Minute)}},
		{Path: "/x", Policy: Policy{Vary: []string{manyFields(maxVaryFields)}}},
	}
	for _, r := range good {
		if err := r.validate(); err != nil {
			t.Errorf("%q: %v", r.Path, err)
		}
	}
	bad := []Rule{
		{Path: "static/*"},
		{Path: ""},
		{Policy: Policy{TTL: caddy.Duration(time.Minute)}},
		{Path: "/x", matcherSets: caddyhttp.MatcherSets{{caddyhttp.MatchMethod{"GET"}}}},
		{Path: "/bad[*"},
		{Path: "/x", Policy: Policy{TTL: caddy.Duration(-time.Second)}},
		{Path: "/x", Policy: Policy{StaleIfError: ptr(caddy.Duration(-1))}},
		{Path: "/x", Policy: Policy{StaleWhileRevalidate: ptr(caddy.Duration(-1))}},
		{Path: "/x", Policy: Policy{Vary: []string{"*"}}},
		{Path: "/x", Policy: Policy{Vary: []string{manyFields(maxVaryFields + 1)}}},
	}
	for _, r := range bad {
		if err := r.validate(); err == nil {
			t.Errorf("%q %+v: no error", r.Path, r.Policy)
		}
	}
}
