package cache

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// PurgeAPI is the admin module admin.api.spark_purge: POST /spark/purge on
// Caddy's admin endpoint removes entries by URI, tag or path prefix from
// every spark_cache whose purge_token the request carries.
type PurgeAPI struct{}

// CaddyModule returns the Caddy module information.
func (PurgeAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.spark_purge",
		New: func() caddy.Module { return new(PurgeAPI) },
	}
}

// Routes returns the admin routes.
func (PurgeAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/spark/purge", Handler: caddy.AdminHandlerFunc(servePurge)}}
}

// PurgeRequest is the body of POST /spark/purge. Any of the three may be
// given; each entry removed counts once.
type PurgeRequest struct {
	// Keys are URIs ("/api/users/42/profile?x=1", or absolute URLs): every
	// stored variant of the URI is removed, for every host.
	Keys []string `json:"keys,omitempty"`
	// Tags are Cache-Tags values: every entry indexed under one is removed.
	Tags []string `json:"tags,omitempty"`
	// Prefix removes every entry whose path starts with it.
	Prefix string `json:"prefix,omitempty"`
}

// PurgeResponse is the answer to a purge.
type PurgeResponse struct {
	Removed int `json:"removed"`
}

const maxPurgeBody = 1 << 20

func servePurge(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed; use POST", r.Method)}
	}
	var targets []*pooled
	pool.Range(func(_, v any) bool {
		if p := v.(*pooled); p.checkToken(r) {
			targets = append(targets, p)
		}
		return true
	})
	if len(targets) == 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spark purge"`)
		return caddy.APIError{HTTPStatus: http.StatusUnauthorized, Err: fmt.Errorf("purge requires Authorization: Bearer <purge_token>")}
	}
	req, err := parsePurgeRequest(r)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	removed := 0
	for _, p := range targets {
		removed += purge(r, p, req)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(PurgeResponse{Removed: removed})
}

// parsePurgeRequest reads and checks a purge body.
func parsePurgeRequest(r *http.Request) (*PurgeRequest, error) {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxPurgeBody))
	dec.DisallowUnknownFields()
	var req PurgeRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decode purge request: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode purge request: trailing data after the JSON object")
	}
	if len(req.Keys) == 0 && len(req.Tags) == 0 && req.Prefix == "" {
		return nil, fmt.Errorf(`purge request names nothing: give "keys", "tags" or "prefix"`)
	}
	if req.Prefix != "" && !strings.HasPrefix(req.Prefix, "/") {
		return nil, fmt.Errorf("prefix %q must start with /", req.Prefix)
	}
	for _, k := range req.Keys {
		if _, err := uriTagOf(nil, k); err != nil {
			return nil, err
		}
	}
	for _, t := range req.Tags {
		if t == "" || strings.ContainsAny(t, " ,\x00") {
			return nil, fmt.Errorf("invalid tag %q", t)
		}
	}
	return &req, nil
}

// uriTagOf returns the URI tag of a purge key, its query normalized as the
// rule for its path says (c may be nil: no parameters ignored).
func uriTagOf(c *Cache, k string) (string, error) {
	u, err := url.Parse(k)
	if err != nil || !strings.HasPrefix(u.EscapedPath(), "/") {
		return "", fmt.Errorf("key %q is not a URI with an absolute path", k)
	}
	var ignore []string
	if c != nil {
		ignore = c.policyFor(u.Path).ignoreQuery
	}
	_, tag := primaryKey("", u.EscapedPath(), u.RawQuery, ignore)
	return tag, nil
}

func purge(r *http.Request, p *pooled, req *PurgeRequest) int {
	ctx := r.Context()
	tags := append([]string(nil), req.Tags...)
	for _, k := range req.Keys {
		tag, _ := uriTagOf(p.cache.Load(), k)
		tags = append(tags, tag)
	}
	n := 0
	if len(tags) > 0 {
		n += p.store.PurgeTags(ctx, tags...)
	}
	if req.Prefix != "" {
		n += p.store.PurgePrefix(ctx, req.Prefix)
	}
	p.metrics.purged(n)
	return n
}

// Interface guards
var _ caddy.AdminRouter = PurgeAPI{}
