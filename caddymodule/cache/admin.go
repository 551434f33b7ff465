package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// PurgeAPI is the admin module admin.api.spark_purge: POST /spark/purge on
// Caddy's admin endpoint removes entries by URI, tag or path prefix from
// every spark_cache whose purge_token the request carries. Keep the admin
// endpoint on loopback (it can read and replace the whole config); to purge
// from other hosts, serve PurgeHandler on a private listener instead.
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

// servePurge is the admin route: a purge of every cache whose token the
// request carries.
func servePurge(w http.ResponseWriter, r *http.Request) error {
	res, err := runPurge(w, r, "")
	if err != nil {
		var pe *purgeError
		if errors.As(err, &pe) {
			return caddy.APIError{HTTPStatus: pe.status, Err: pe.err}
		}
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(res)
}

// PurgeHandler is the HTTP handler http.handlers.spark_purge: the JSON purge
// API of POST /spark/purge, with the named cache's purge_token, on a
// listener of the operator's choosing (a site bound to a private address),
// so that the admin endpoint can stay on loopback. It answers every request
// it gets: give it a matcher or a site of its own.
type PurgeHandler struct {
	// Cache names the spark_cache whose entries it removes (its `name`).
	// Default: "default".
	Cache string `json:"cache,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (PurgeHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_purge",
		New: func() caddy.Module { return new(PurgeHandler) },
	}
}

// Provision fills in the default cache name.
func (h *PurgeHandler) Provision(caddy.Context) error {
	if h.Cache == "" {
		h.Cache = "default"
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (h *PurgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	res, err := runPurge(w, r, h.Cache)
	if err != nil {
		var pe *purgeError
		if !errors.As(err, &pe) {
			return err
		}
		// The admin API's error body: {"error": "..."}.
		w.WriteHeader(pe.status)
		return json.NewEncoder(w).Encode(map[string]string{"error": pe.err.Error()})
	}
	return json.NewEncoder(w).Encode(res)
}

// purgeError is a purge request refused: the status to answer and why.
type purgeError struct {
	status int
	err    error
}

func (e *purgeError) Error() string { return e.err.Error() }

// runPurge checks and runs a purge request against the caches whose purge
// token it carries, among those named name ("": every cache). The token is
// compared in constant time and never echoed. A refusal is a *purgeError
// (with WWW-Authenticate or Allow set on w when it calls for them).
func runPurge(w http.ResponseWriter, r *http.Request, name string) (PurgeResponse, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return PurgeResponse{}, &purgeError{http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed; use POST", r.Method)}
	}
	var targets []*pooled
	named := 0
	pool.Range(func(_, v any) bool {
		p := v.(*pooled)
		if name != "" && p.name != name {
			return true
		}
		named++
		if p.checkToken(r) {
			targets = append(targets, p)
		}
		return true
	})
	if name != "" && named == 0 {
		return PurgeResponse{}, &purgeError{http.StatusInternalServerError, fmt.Errorf("spark_purge: no spark_cache named %q is loaded", name)}
	}
	if len(targets) == 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="spark purge"`)
		return PurgeResponse{}, &purgeError{http.StatusUnauthorized, fmt.Errorf("purge requires Authorization: Bearer <purge_token>")}
	}
	req, err := parsePurgeRequest(r)
	if err != nil {
		return PurgeResponse{}, &purgeError{http.StatusBadRequest, err}
	}
	removed := 0
	for _, p := range targets {
		removed += purge(r, p, req)
	}
	return PurgeResponse{Removed: removed}, nil
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

// purge removes what req names from p. It runs on a context detached from
// the client's request: a client that hangs up mid-purge cancels nothing.
func purge(r *http.Request, p *pooled, req *PurgeRequest) int {
	ctx := context.WithoutCancel(r.Context())
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
var (
	_ caddy.AdminRouter           = PurgeAPI{}
	_ caddy.Provisioner           = (*PurgeHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PurgeHandler)(nil)
)
