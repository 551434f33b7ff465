package batch

import (
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("spark_batch", parseCaddyfile)
	// Before basic_auth (and so before spark_auth, right after it): the
	// batch itself needs no token, each of its sub-requests goes through
	// the whole route again and is checked there.
	httpcaddyfile.RegisterDirectiveOrder("spark_batch", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var b Handler
	err := b.UnmarshalCaddyfile(h.Dispenser)
	return &b, err
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
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "max_requests":
			err = caddyargs.Read(d, 1, caddyargs.Int(&h.MaxRequests, 1))
		case "max_body_size":
			err = caddyargs.Read(d, 1, caddyargs.Size(&h.MaxBodySize, 1, 64<<20))
		case "max_batch_size":
			err = caddyargs.Read(d, 1, caddyargs.Size(&h.MaxBatchSize, 1, 64<<20))
		case "max_response_size":
			err = caddyargs.Read(d, 1, caddyargs.Size(&h.MaxResponseSize, 1, 64<<20))
		case "methods":
			h.Methods = d.RemainingArgs()
			if len(h.Methods) == 0 {
				return d.ArgErr()
			}
			for i, m := range h.Methods {
				h.Methods[i] = strings.ToUpper(m)
				if !allowedMethod(h.Methods[i]) {
					return d.Errf("methods: %q is not one of %s", m, strings.Join(DefaultMethods, " "))
				}
			}
		case "path_prefixes":
			h.PathPrefixes = d.RemainingArgs()
			if len(h.PathPrefixes) == 0 {
				return d.ArgErr()
			}
			for _, p := range h.PathPrefixes {
				if !strings.HasPrefix(p, "/") {
					return d.Errf("path_prefixes: %q must start with /", p)
				}
			}
		case "concurrency":
			err = caddyargs.Read(d, 1, caddyargs.Int(&h.Concurrency, 1))
		case "timeout":
			err = caddyargs.Read(d, 1, caddyargs.Duration(&h.Timeout, time.Millisecond, MaxTimeout))
		case "streaming":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Streaming = true
		default:
			return d.Errf("unknown spark_batch option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
