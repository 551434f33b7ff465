// Package batch is the Caddy module http.handlers.spark_batch: POST a list
// of API calls as one request, get their responses back as one response.
//
// Each sub-request is an ordinary *http.Request served through the same
// Caddy server (the whole route, from the top) as if the client had sent it
// on its own: spark_auth checks the batch's bearer token on it, spark_cache
// answers it from L1/L2 under the same keys (private entries under the
// caller's credential hash), purges and invalidation happen as usual. On a
// phone, where the round trip is the cost, five calls become one, and the
// calls the edge has cached never reach the origin.
//
// The request and response shapes, the limits and the errors are in
// README.md ("Batching: spark_batch"). This file is the Caddy surface; the
// decoding is in decode.go, the running in handler.go and run.go.
package batch

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults and bounds of the configuration.
const (
	DefaultMaxRequests     = 10
	MaxMaxRequests         = 100
	DefaultMaxBodySize     = 64 << 10
	DefaultMaxBatchSize    = 1 << 20
	DefaultMaxResponseSize = 1 << 20
	DefaultConcurrency     = 4
	DefaultTimeout         = 10 * time.Second
	MaxTimeout             = 5 * time.Minute
	DefaultPathPrefix      = "/api/"
)

// DefaultMethods are the methods sub-requests may use unless configured.
var DefaultMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Handler is the spark_batch HTTP handler. It answers the requests it is
// given (it never calls the next handler): put it behind a matcher such as
// `path /api/batch`.
type Handler struct {
	// MaxRequests is the most sub-requests one batch may hold (default 10,
	// at most 100). More: 422, nothing run.
	MaxRequests int `json:"max_requests,omitempty"`
	// MaxBodySize is the largest body one sub-request may carry, in bytes
	// once decoded (default 64 KiB). Larger: 413, nothing run.
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// MaxBatchSize is the largest batch request body, in bytes: the total
	// of everything the client sends (default 1 MiB). Larger: 413.
	MaxBatchSize int64 `json:"max_batch_size,omitempty"`
	// MaxResponseSize is the largest body one sub-response may have
	// (default 1 MiB); a larger one is replaced by a 502 problem.
	MaxResponseSize int64 `json:"max_response_size,omitempty"`
	// Methods are the methods sub-requests may use (default GET HEAD POST
	// PUT PATCH DELETE; only these six are accepted here).
	Methods []string `json:"methods,omitempty"`
	// PathPrefixes are the paths sub-requests may name: each must start
	// with one of them (default /api/). The batch's own path is always
	// refused (no batch within a batch).
	PathPrefixes []string `json:"path_prefixes,omitempty"`
	// Concurrency is how many GET/HEAD sub-requests of one batch run at
	// once (default 4).
	Concurrency int `json:"concurrency,omitempty"`
	// Timeout is the batch's deadline (default 10s): a sub-request not
	// answered by then gets 504, one not started by then is not run (504).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Streaming lets a client that sends Accept: application/x-ndjson get
	// each sub-response as one line as soon as it is done, instead of one
	// JSON document at the end.
	Streaming bool `json:"streaming,omitempty"`
	// ResponseHeaders are the sub-response fields the batch answer keeps
	// (any case; "*" keeps every field; default DefaultResponseHeaders).
	// Content-Type (but application/json) and Content-Encoding are always
	// kept; connection-level fields, Content-Length, Set-Cookie and the
	// edge-only contract fields never are. A client adds fields with
	// "response_headers" in the batch or in a sub-request.
	ResponseHeaders []string `json:"response_headers,omitempty"`

	methods map[string]bool
	keep    headerSelection
	metrics *metrics
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_batch",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in the defaults and registers the metrics.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.setDefaults()
	m, err := newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("spark_batch: register metrics: %w", err)
	}
	h.metrics = m
	if h.keep, err = parseHeaderSelection(h.ResponseHeaders); err != nil {
		return fmt.Errorf("spark_batch: response_headers: %w", err)
	}
	return nil
}

// setDefaults fills the unset fields and the method set.
func (h *Handler) setDefaults() {
	h.MaxRequests = cmp.Or(h.MaxRequests, DefaultMaxRequests)
	h.MaxBodySize = cmp.Or(h.MaxBodySize, DefaultMaxBodySize)
	h.MaxBatchSize = cmp.Or(h.MaxBatchSize, DefaultMaxBatchSize)
	h.MaxResponseSize = cmp.Or(h.MaxResponseSize, DefaultMaxResponseSize)
	if len(h.Methods) == 0 {
		h.Methods = append([]string(nil), DefaultMethods...)
	}
	if len(h.PathPrefixes) == 0 {
		h.PathPrefixes = []string{DefaultPathPrefix}
	}
	if len(h.ResponseHeaders) == 0 {
		h.ResponseHeaders = append([]string(nil), DefaultResponseHeaders...)
	}
	h.Concurrency = cmp.Or(h.Concurrency, DefaultConcurrency)
	h.Timeout = cmp.Or(h.Timeout, caddy.Duration(DefaultTimeout))
	h.methods = make(map[string]bool, len(h.Methods))
	for _, m := range h.Methods {
		h.methods[strings.ToUpper(m)] = true
	}
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	switch {
	case h.MaxRequests < 0 || h.MaxRequests > MaxMaxRequests:
		return fmt.Errorf("spark_batch: max_requests %d: want 1 to %d", h.MaxRequests, MaxMaxRequests)
	case h.MaxBodySize < 0, h.MaxBatchSize < 0, h.MaxResponseSize < 0:
		return fmt.Errorf("spark_batch: sizes must be positive")
	case h.MaxBodySize > h.MaxBatchSize && h.MaxBatchSize > 0:
		return fmt.Errorf("spark_batch: max_body_size %d is larger than max_batch_size %d", h.MaxBodySize, h.MaxBatchSize)
	case h.Concurrency < 0:
		return fmt.Errorf("spark_batch: concurrency %d: want at least 1", h.Concurrency)
	case h.Timeout < 0 || time.Duration(h.Timeout) > MaxTimeout:
		return fmt.Errorf("spark_batch: timeout %v: want up to %v", time.Duration(h.Timeout), MaxTimeout)
	}
	for _, m := range h.Methods {
		if !allowedMethod(strings.ToUpper(m)) {
			return fmt.Errorf("spark_batch: method %q: want one of %s", m, strings.Join(DefaultMethods, " "))
		}
	}
	for _, p := range h.PathPrefixes {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("spark_batch: path prefix %q must start with /", p)
		}
	}
	if _, err := parseHeaderSelection(h.ResponseHeaders); err != nil {
		return fmt.Errorf("spark_batch: response_headers: %w", err)
	}
	return nil
}

// allowedMethod reports whether m is one of DefaultMethods.
func allowedMethod(m string) bool {
	for _, d := range DefaultMethods {
		if m == d {
			return true
		}
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
