package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestMatchPath(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"*", "/anything/at/all", true},
		{"*", "/", true},
		{"/api/users/*/profile", "/api/users/42/profile", true},
		{"/api/users/*/profile", "/api/users/abc-def/profile", true},
		{"/api/users/*/profile", "/api/users//profile", true},
		{"/api/users/*/profile", "/api/users/42/x/profile", false},
		{"/api/users/*/profile", "/api/users/42/profile/extra", false},
		{"/api/users/*/profile", "/api/users/42/profiles", false},
		{"/api/users/*/profile", "/api/users/42", false},
		{"/static/*", "/static/app.js", true},
		{"/static/*", "/static/css/deep/site.css", true},
		{"/static/*", "/static/", true},
		{"/static/*", "/static", false},
		{"/static/*", "/staticfoo/x", false},
		{"/static/*", "/api/static/x", false},
		{"/api/*/suggestions*", "/api/42/suggestions", true},
		{"/api/*/suggestions*", "/api/42/suggestions?x", true},
		{"/api/*/suggestions*", "/api/42/suggestions/page/2", true},
		{"/api/*/suggestions*", "/api/42/other", false},
		{"/api/*/suggestions*", "/api/42", false},
		{"/api/*/*", "/api/a/b/c/d", true},
		{"/photos/*.jpg", "/photos/a.jpg", true},
		{"/photos/*.jpg", "/photos/a.png", false},
		{"/photos/*.jpg", "/photos/x/a.jpg", false},
		{"/exact", "/exact", true},
		{"/exact", "/exact/", false},
		{"/exact", "/Exact", false},
		{"/v?/x", "/v1/x", true},
		{"/v[0-9]/x", "/v7/x", true},
		{"/v[0-9]/x", "/vz/x", false},
		{"/bad[", "/bad[", false}, // malformed patterns match nothing
	}
	for _, tc := range cases {
		if got := matchPath(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matchPath(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

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
		p := c.policyFor(tc.path)
		if p.ttl != tc.ttl || p.private != tc.priv || p.sie != time.Minute {
			t.Errorf("policyFor(%q) = %+v; want ttl %v private %v sie 1m", tc.path, *p, tc.ttl, tc.priv)
		}
	}
	if p := c.policyFor("/other"); p != &c.def {
		t.Errorf("unmatched path does not get the default policy")
	}
}

func TestRuleValidate(t *testing.T) {
	good := []Rule{
		{Path: "*"},
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

func TestLiteralPrefix(t *testing.T) {
	for pattern, want := range map[string]string{
		"*":                    "",
		"/static/*":            "/static/",
		"/api/users/*/profile": "/api/users/",
		"/v?/x":                "/v",
		"/v[0-9]":              "/v",
		`/a\*b`:                "/a",
		"/exact":               "/exact",
	} {
		if got := literalPrefix(pattern); got != want {
			t.Errorf("literalPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}
