package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Policy is what the operator says about responses to some requests. Unset
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

// Rule is a Policy for the requests its matchers select.
type Rule struct {
	// MatcherSetsRaw selects the requests the rule applies to with Caddy's
	// request matchers, as a route's "match" does: the rule applies when
	// any one of the sets matches. The Caddyfile's `rule <pattern>` is
	// shorthand for one set holding one path matcher.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`
	// Path is the older shorthand for "match": [{"path": [Path]}], with
	// Caddy's path matcher semantics (case-insensitive, on the cleaned
	// path; a trailing '*' alone is a prefix). Kept for JSON configs
	// adapted before "match" existed; give one of the two.
	Path string `json:"path,omitempty"`
	// Policy is what applies to the selected requests (its fields inline
	// in the rule's JSON).
	Policy

	matcherSets caddyhttp.MatcherSets
}

// provision loads the rule's matchers.
func (r *Rule) provision(ctx caddy.Context) error {
	if len(r.MatcherSetsRaw) == 0 {
		return nil
	}
	sets, err := ctx.LoadModule(r, "MatcherSetsRaw")
	if err != nil {
		return fmt.Errorf("load matchers: %w", err)
	}
	if err := r.matcherSets.FromInterface(sets); err != nil {
		return fmt.Errorf("load matchers: %w", err)
	}
	return nil
}

// matchers returns the rule's matcher sets with its Path, if any, as one
// more set.
func (r *Rule) matchers() caddyhttp.MatcherSets {
	if r.Path == "" {
		return r.matcherSets
	}
	return append(r.matcherSets[:len(r.matcherSets):len(r.matcherSets)], caddyhttp.MatcherSet{pathMatcher(r.Path)})
}

// pathMatcher returns Caddy's path matcher for one pattern, provisioned.
func pathMatcher(pattern string) caddyhttp.MatchPath {
	m := caddyhttp.MatchPath{pattern}
	_ = m.Provision(caddy.Context{}) // lower-cases the pattern; never fails
	return m
}

// name says which rule an error is about.
func (r *Rule) name(i int) string {
	if r.Path != "" {
		return fmt.Sprintf("rule %q", r.Path)
	}
	return fmt.Sprintf("rule #%d", i+1)
}

// policy is a Policy with defaults resolved, ready for the request.
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

// validate checks what selects the rule's requests, and its policy.
func (r Rule) validate() error {
	switch {
	case r.Path == "" && len(r.MatcherSetsRaw) == 0 && len(r.matcherSets) == 0:
		return fmt.Errorf("rule without a path or a match: it would apply to every request (set the defaults instead)")
	case r.Path != "" && (len(r.MatcherSetsRaw) > 0 || len(r.matcherSets) > 0):
		return fmt.Errorf("rule %q: give a path or a match, not both", r.Path)
	case r.Path != "":
		if err := checkPathPattern(r.Path); err != nil {
			return fmt.Errorf("rule %q: %w", r.Path, err)
		}
	}
	return r.Policy.validate()
}

// checkPathPattern refuses a rule's path pattern that can match no request
// path: one that starts with neither / nor *, or a malformed glob.
func checkPathPattern(p string) error {
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
		return fmt.Errorf("path pattern must start with / or *")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("path pattern: %w", err)
	}
	return nil
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

// compiledRule is a rule ready for requests.
type compiledRule struct {
	match caddyhttp.MatcherSets
	pol   policy
}

// policyFor returns the policy of the first rule whose matchers select r,
// else the defaults. A matcher's error (as a route's would) is returned.
func (c *Cache) policyFor(r *http.Request) (*policy, error) {
	for i := range c.rules {
		ok, err := c.rules[i].match.AnyMatchWithError(r)
		if err != nil {
			return nil, fmt.Errorf("spark_cache: match rule #%d: %w", i+1, err)
		}
		if ok {
			return &c.rules[i].pol, nil
		}
	}
	return &c.def, nil
}

// policyForURI returns the policy of a bare GET of u on host: the one that
// chose how the keys of u's stored responses were normalized, for purges
// and invalidations, which know the URI but not the request that filled
// it. (A rule that selects requests by their header fields cannot be told
// from a URI: such a purge key is normalized as the defaults say.)
func (c *Cache) policyForURI(ctx context.Context, host string, u *url.URL) *policy {
	req := (&http.Request{Method: http.MethodGet, URL: u, Host: host, Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RequestURI: u.RequestURI()}).WithContext(ctx)
	req = withReplacer(req)
	pol, err := c.policyFor(req)
	if err != nil {
		return &c.def
	}
	return pol
}

// withReplacer returns r with a replacer of its own in its context, which
// Caddy's matchers need (Caddy's server puts one in every request's; a
// request made elsewhere, in a test or for a purge key, has none).
func withReplacer(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}
