package auth

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
)

func init() {
	// Right after Caddy's own basic_auth: before request_header (so
	// {http.auth.user.id} can be used there), spark_image_hints (after
	// request_header) and spark_cache (before encode). A refused request
	// reaches none of them.
	caddyargs.RegisterHandler[Handler]("spark_auth", httpcaddyfile.After, "basic_auth")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_auth [<matcher>] {
//		hs256_secret <secret> [<kid>]      # repeatable; e.g. {env.SPARK_JWT_SECRET}
//		ed25519_key  <pem file> [<kid>]    # repeatable
//		rs256_key    <pem file> [<kid>]    # repeatable
//		issuer       <iss>
//		audience     <aud>
//		max_lifetime <duration>
//		leeway       <duration>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, func(d *caddyfile.Dispenser) error {
		ok, err := h.UnmarshalOption(d)
		if err == nil && !ok {
			err = d.Errf("unknown spark_auth option %q", d.Val())
		}
		return err
	})
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
