package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spark-edge/spark/caddymodule/internal/tagpurge"
)

// PurgeRequest is the body of POST /spark_cache/purge. Any of the three may be
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
	// Removed counts the entries removed, each once.
	Removed int `json:"removed"`
}

const maxPurgeBody = 1 << 20

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
		if _, err := uriTagOf(r.Context(), nil, k); err != nil {
			return nil, err
		}
	}
	if err := tagpurge.CheckTags(req.Tags); err != nil {
		return nil, err
	}
	return &req, nil
}

// uriTagOf returns the URI tag of a purge key, its query normalized as the
// policy a GET of it selects says (c may be nil: no parameters ignored).
func uriTagOf(ctx context.Context, c *Cache, k string) (string, error) {
	u, err := url.Parse(k)
	if err != nil || !strings.HasPrefix(u.EscapedPath(), "/") {
		return "", fmt.Errorf("key %q is not a URI with an absolute path", k)
	}
	var ignore []string
	if c != nil {
		ignore = c.policyForURI(ctx, u.Host, u).ignoreQuery
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
		tag, _ := uriTagOf(ctx, p.cache.Load(), k)
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
