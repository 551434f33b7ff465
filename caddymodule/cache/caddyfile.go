package cache

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

func init() {
	// spark_purge is a responder that answers before the cache sees the
	// request (a purge is no cacheable request): registered first, each
	// right before encode, it lands before spark_cache.
	httpcaddyfile.RegisterHandlerDirective("spark_purge", parsePurgeCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("spark_purge", httpcaddyfile.Before, "encode")
	httpcaddyfile.RegisterHandlerDirective("spark_cache", parseCaddyfile)
	// Before encode: hits skip compression (the stored body is already
	// encoded for its Accept-Encoding bucket), and everything after it,
	// reverse_proxy included, is what a miss runs.
	httpcaddyfile.RegisterDirectiveOrder("spark_cache", httpcaddyfile.Before, "encode")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var c Handler
	err := c.UnmarshalCaddyfile(h.Dispenser)
	return &c, err
}

func parsePurgeCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var p PurgeHandler
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return &p, err
}

// UnmarshalCaddyfile sets up the purge handler from Caddyfile tokens:
//
//	spark_purge [<matcher>] {
//		cache <name>
//	}
func (p *PurgeHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "cache":
			if !d.AllArgs(&p.Cache) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized spark_purge option %q", opt)
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_cache {
//		name            <name>
//		capacity        <size>
//		max_entry_size  <size>
//		purge_token     <token>       # {env.NAME} or {file./path} keeps it out of the config
//		encodings       <coding...>
//		# policy defaults, also valid inside rule blocks:
//		ttl                     <duration>
//		private                 [on|off]
//		vary                    <field...>
//		etag                    [on|off]
//		stale_while_revalidate  <duration>
//		stale_if_error          <duration>
//		ignore_query            <param...>
//		rule <path pattern> {          # shorthand for match { path <path pattern> }
//			<policy options>
//		}
//		rule {
//			match {
//				<request matchers>
//			}
//			<policy options>
//		}
//		redis [<address...>] {
//			addresses       <address...>
//			cluster
//			master_name     <name>
//			username        <user>        # {env.NAME} or {file./path}, as purge_token
//			password        <password>
//			db              <n>
//			pool_size       <n>
//			min_idle_conns  <n>
//			dial_timeout    <duration>
//			read_timeout    <duration>
//			write_timeout   <duration>
//			key_prefix      <prefix>
//			codec           s2|zstd|none
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "name":
			if !d.AllArgs(&h.Name) {
				return d.ArgErr()
			}
		case "capacity", "max_entry_size":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n > 1<<40 {
				return d.Errf("%s: invalid size %q", opt, v)
			}
			if opt == "capacity" {
				h.Capacity = int64(n)
			} else {
				h.MaxEntrySize = int64(n)
			}
		case "purge_token":
			// No argument (an unset {$ENV} placeholder) leaves purges off.
			args := d.RemainingArgs()
			if len(args) > 1 {
				return d.ArgErr()
			}
			if len(args) == 1 {
				h.PurgeToken = args[0]
			}
		case "encodings":
			h.Encodings = d.RemainingArgs()
			if len(h.Encodings) == 0 {
				return d.ArgErr()
			}
		case "redis":
			r, err := unmarshalRedis(d)
			if err != nil {
				return err
			}
			h.Redis = r
		case "rule":
			r, err := unmarshalRule(d)
			if err != nil {
				return err
			}
			h.Rules = append(h.Rules, r)
		default:
			if err := unmarshalPolicyOption(d, &h.Defaults); err != nil {
				return err
			}
		}
	}
	return nil
}

// unmarshalRule reads a rule: `rule <path pattern> { <policy options> }`,
// shorthand for a path matcher, or `rule { match { <matchers> } <policy
// options> }` with any of Caddy's request matchers (several match blocks:
// any one selects the request).
func unmarshalRule(d *caddyfile.Dispenser) (Rule, error) {
	var r Rule
	if d.NextArg() {
		if err := checkPathPattern(d.Val()); err != nil {
			return r, d.Errf("rule %q: %v", d.Val(), err)
		}
		r.MatcherSetsRaw = caddyhttp.RawMatcherSets{{"path": caddyconfig.JSON(caddyhttp.MatchPath{d.Val()}, nil)}}
		if d.NextArg() {
			return r, d.ArgErr()
		}
	}
	pattern := len(r.MatcherSetsRaw) > 0
	for d.NextBlock(1) {
		if d.Val() != "match" {
			if err := unmarshalPolicyOption(d, &r.Policy); err != nil {
				return r, err
			}
			continue
		}
		if pattern {
			return r, d.Err("a rule takes a path pattern or match blocks, not both")
		}
		set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
		if err != nil {
			return r, err
		}
		r.MatcherSetsRaw = append(r.MatcherSetsRaw, set)
	}
	if len(r.MatcherSetsRaw) == 0 {
		return r, d.Err("a rule needs a path pattern or a match block")
	}
	return r, nil
}

// unmarshalRedis reads a redis block: the options every Spark redis
// block takes (redisconf) and min_idle_conns and codec.
func unmarshalRedis(d *caddyfile.Dispenser) (*RedisConfig, error) {
	r := &RedisConfig{}
	err := r.UnmarshalBlock(d, func(opt string) []caddyargs.Setter {
		switch opt {
		case "min_idle_conns":
			return []caddyargs.Setter{caddyargs.Int(&r.MinIdleConns, 0)}
		case "codec":
			return []caddyargs.Setter{caddyargs.String(&r.Codec)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, d.Errf("redis: %v", err)
	}
	return r, nil
}

// unmarshalPolicyOption reads one policy option at the dispenser's cursor.
func unmarshalPolicyOption(d *caddyfile.Dispenser, p *Policy) error {
	switch opt := d.Val(); opt {
	case "ttl":
		dur, err := durationArg(d)
		if err != nil {
			return err
		}
		p.TTL = dur
	case "stale_while_revalidate", "stale_if_error":
		dur, err := durationArg(d)
		if err != nil {
			return err
		}
		if opt == "stale_if_error" {
			p.StaleIfError = &dur
		} else {
			p.StaleWhileRevalidate = &dur
		}
	case "private", "etag":
		on := true
		if d.NextArg() {
			switch d.Val() {
			case "on", "true":
			case "off", "false":
				on = false
			default:
				return d.Errf("%s: want on or off, got %q", opt, d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		}
		if opt == "private" {
			p.Private = &on
		} else {
			p.ETag = &on
		}
	case "vary":
		p.Vary = d.RemainingArgs()
		if len(p.Vary) == 0 {
			return d.ArgErr()
		}
	case "ignore_query":
		p.IgnoreQuery = d.RemainingArgs()
		if len(p.IgnoreQuery) == 0 {
			return d.ArgErr()
		}
	default:
		return d.Errf("unrecognized spark_cache option %q", opt)
	}
	if err := p.validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// durationArg reads the option's one duration argument: Caddy's syntax or
// bare seconds, at most duration.Max (a huge value is an error, never a
// wrapped one).
func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	var v caddy.Duration
	err := caddyargs.Read(d, 1, caddyargs.Duration(&v, 0, duration.Max))
	return v, err
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*PurgeHandler)(nil)
)
