package cache

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Policy is what the operator says about responses on some paths. Unset
// fields of a rule take the cache-wide default.
type Policy struct {
	// TTL is the edge's freshness lifetime for stored responses, replacing
	// the lifetime Cache-Control, Expires or heuristics give. It never makes
	// a no-store response storable, never skips the revalidation no-cache
	// asks for, and yields to CDN-Cache-Control, which is the origin talking
	// to the edge directly (RFC 9213).
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Private allows storing responses marked private, or to requests with
	// credentials, under a key that includes a hash of the credential.
	Private *bool `json:"private,omitempty"`
	// Vary adds request fields to every stored response's Vary list.
	Vary []string `json:"vary,omitempty"`
	// ETag adds a strong ETag (a hash of the body) to 200 responses that
	// have none.
	ETag *bool `json:"etag,omitempty"`
	// StaleWhileRevalidate is the stale-while-revalidate window for responses
	// that do not state one.
	StaleWhileRevalidate *caddy.Duration `json:"stale_while_revalidate,omitempty"`
	// StaleIfError is the stale-if-error window for responses that do not
	// state one.
	StaleIfError *caddy.Duration `json:"stale_if_error,omitempty"`
	// IgnoreQuery lists query parameters left out of the key; a name ending
	// in '*' is a prefix (utm_*).
	IgnoreQuery []string `json:"ignore_query,omitempty"`
}

// Rule is a Policy for the request paths that match a pattern.
type Rule struct {
	// Path is a pattern as in path.Match; a trailing '*' matches any rest of
	// the path, including further segments (/static/*).
	Path string `json:"path"`
	Policy
}

// policy is a Policy with defaults resolved, ready for the request path.
type policy struct {
	ttl         time.Duration // 0: none
	private     bool
	vary        []string // lower case, sorted
	etag        bool
	swr, sie    time.Duration // -1: none
	ignoreQuery []string
}

// resolve fills unset fields of p from def.
func resolve(p, def Policy) policy {
	r := policy{
		ttl:         time.Duration(p.TTL),
		private:     boolOr(p.Private, def.Private),
		etag:        boolOr(p.ETag, def.ETag),
		swr:         durOr(p.StaleWhileRevalidate, def.StaleWhileRevalidate),
		sie:         durOr(p.StaleIfError, def.StaleIfError),
		ignoreQuery: p.IgnoreQuery,
	}
	if r.ttl == 0 {
		r.ttl = time.Duration(def.TTL)
	}
	if r.ignoreQuery == nil {
		r.ignoreQuery = def.IgnoreQuery
	}
	vary := p.Vary
	if vary == nil {
		vary = def.Vary
	}
	r.vary, _ = parseVary(vary)
	return r
}

func boolOr(v, def *bool) bool {
	if v != nil {
		return *v
	}
	return def != nil && *def
}

func durOr(v, def *caddy.Duration) time.Duration {
	switch {
	case v != nil:
		return time.Duration(*v)
	case def != nil:
		return time.Duration(*def)
	}
	return -1
}

// validate checks a pattern and a policy.
func (r Rule) validate() error {
	if !strings.HasPrefix(r.Path, "/") && r.Path != "*" {
		return fmt.Errorf("rule %q: path pattern must start with /", r.Path)
	}
	if _, err := path.Match(strings.TrimSuffix(r.Path, "*"), ""); err != nil {
		return fmt.Errorf("rule %q: %w", r.Path, err)
	}
	return r.Policy.validate()
}

func (p Policy) validate() error {
	if p.TTL < 0 {
		return fmt.Errorf("ttl %s is negative", time.Duration(p.TTL))
	}
	for _, d := range []*caddy.Duration{p.StaleWhileRevalidate, p.StaleIfError} {
		if d != nil && *d < 0 {
			return fmt.Errorf("stale window %s is negative", time.Duration(*d))
		}
	}
	if fields, star := parseVary(p.Vary); star || len(fields) > maxVaryFields {
		return fmt.Errorf("vary: at most %d fields and no '*'", maxVaryFields)
	}
	return nil
}

// literalPrefix returns the part of a pattern before its first wildcard or
// escape: every path the pattern matches starts with it.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, "*?[\\"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// matchPath reports whether a request path matches a rule pattern.
func matchPath(pattern, p string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		if !strings.ContainsAny(prefix, "*?[\\") {
			return strings.HasPrefix(p, prefix)
		}
		// Match the prefix segment by segment, then accept any rest.
		n := strings.Count(prefix, "/")
		cut := p
		for i, seen := 0, 0; i < len(p); i++ {
			if p[i] == '/' {
				seen++
				if seen > n {
					cut = p[:i]
					break
				}
			}
		}
		ok, _ := path.Match(pattern, cut)
		return ok
	}
	ok, _ := path.Match(pattern, p)
	return ok
}
