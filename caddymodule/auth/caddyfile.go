package auth

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("spark_auth", parseCaddyfile)
	// Right after Caddy's own basic_auth: before request_header (so
	// {http.auth.user.id} can be used there), spark_image_hints (after
	// request_header) and spark_cache (before encode). A refused request
	// reaches none of them.
	httpcaddyfile.RegisterDirectiveOrder("spark_auth", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var a Handler
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return &a, err
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
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "hs256_secret":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			s := Secret{Value: args[0]}
			if len(args) == 2 {
				s.KeyID = args[1]
			}
			h.HS256Secrets = append(h.HS256Secrets, s)
		case "ed25519_key", "rs256_key":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			k := PublicKey{File: args[0]}
			if len(args) == 2 {
				k.KeyID = args[1]
			}
			if opt == "ed25519_key" {
				h.Ed25519Keys = append(h.Ed25519Keys, k)
			} else {
				h.RS256Keys = append(h.RS256Keys, k)
			}
		case "issuer":
			if !d.AllArgs(&h.Issuer) {
				return d.ArgErr()
			}
		case "audience":
			if !d.AllArgs(&h.Audience) {
				return d.ArgErr()
			}
		case "max_lifetime", "leeway":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := duration.Parse(v)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "max_lifetime" {
				h.MaxLifetime = caddy.Duration(dur)
			} else {
				h.Leeway = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown spark_auth option %q", opt)
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
