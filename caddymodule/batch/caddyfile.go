package batch

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
)

func init() {
	// Before basic_auth (and so before spark_auth, right after it): the
	// batch itself needs no token, each of its sub-requests goes through
	// the whole route again and is checked there.
	caddyargs.RegisterHandler[Handler]("spark_batch", httpcaddyfile.Before, "basic_auth")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_batch [<matcher>] {
//		max_requests      <n>            # default 10, at most 100
//		max_body_size     <size>         # per sub-request body, default 64KiB
//		max_batch_size    <size>         # the whole batch request, default 1MiB
//		max_response_size <size>         # per sub-response body, default 1MiB
//		methods           <method...>    # default GET HEAD POST PUT PATCH DELETE
//		path_prefixes     <prefix...>    # default /api/
//		concurrency       <n>            # GET/HEAD at once, default 4
//		timeout           <duration>     # the batch's deadline, default 10s
//		streaming                        # NDJSON for Accept: application/x-ndjson
//		response_headers  <field...>     # sub-response fields kept; * for all
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, h.unmarshalOption)
}

// unmarshalOption reads one spark_batch option at the dispenser's cursor.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	var arg caddyargs.Setter
	switch d.Val() {
	case "max_requests":
		arg = caddyargs.Int(&h.MaxRequests, 1)
	case "max_body_size":
		arg = caddyargs.Size(&h.MaxBodySize, 1, 64<<20)
	case "max_batch_size":
		arg = caddyargs.Size(&h.MaxBatchSize, 1, 64<<20)
	case "max_response_size":
		arg = caddyargs.Size(&h.MaxResponseSize, 1, 64<<20)
	case "concurrency":
		arg = caddyargs.Int(&h.Concurrency, 1)
	case "timeout":
		arg = caddyargs.Duration(&h.Timeout, time.Millisecond, MaxTimeout)
	case "methods":
		return h.unmarshalMethods(d)
	case "path_prefixes":
		return h.unmarshalPathPrefixes(d)
	case "response_headers":
		return h.unmarshalResponseHeaders(d)
	case "streaming":
		if d.NextArg() {
			return d.ArgErr()
		}
		h.Streaming = true
		return nil
	default:
		return d.Errf("unknown spark_batch option %q", d.Val())
	}
	return caddyargs.Read(d, 1, arg)
}

// unmarshalMethods reads `methods <method...>`: each one batch allows.
func (h *Handler) unmarshalMethods(d *caddyfile.Dispenser) error {
	methods, err := caddyargs.ListOf(d, func(m string) (string, error) {
		if !allowedMethod(strings.ToUpper(m)) {
			return "", fmt.Errorf("%q is not one of %s", m, strings.Join(DefaultMethods, " "))
		}
		return strings.ToUpper(m), nil
	})
	if err != nil {
		return err
	}
	h.Methods = methods
	return nil
}

// unmarshalPathPrefixes reads `path_prefixes <prefix...>`: each an
// absolute path.
func (h *Handler) unmarshalPathPrefixes(d *caddyfile.Dispenser) error {
	prefixes, err := caddyargs.ListOf(d, func(p string) (string, error) {
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("%q must start with /", p)
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	h.PathPrefixes = prefixes
	return nil
}

// unmarshalResponseHeaders reads `response_headers <field...>`: the
// sub-response fields the batch answer keeps, or * for all.
func (h *Handler) unmarshalResponseHeaders(d *caddyfile.Dispenser) error {
	names, err := caddyargs.List(d)
	if err != nil {
		return err
	}
	if _, err := parseHeaderSelection(names); err != nil {
		return d.Errf("response_headers: %v", err)
	}
	h.ResponseHeaders = names
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
