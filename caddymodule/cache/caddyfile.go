package cache

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

func init() {
	// spark_purge is a responder that answers before the cache sees the
	// request (a purge is no cacheable request): registered first, each
	// right before encode, it lands before spark_cache.
	caddyargs.RegisterHandler[PurgeHandler]("spark_purge", httpcaddyfile.Before, "encode")
	// Before encode: hits skip compression (the stored body is already
	// encoded for its Accept-Encoding bucket), and everything after it,
	// reverse_proxy included, is what a miss runs.
	caddyargs.RegisterHandler[Handler]("spark_cache", httpcaddyfile.Before, "encode")
}

// UnmarshalCaddyfile sets up the purge handler from Caddyfile tokens:
//
//	spark_purge [<matcher>] {
//		cache <name>
//	}
func (p *PurgeHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, func(d *caddyfile.Dispenser) error {
		if d.Val() != "cache" {
			return d.Errf("unrecognized spark_purge option %q", d.Val())
		}
		return caddyargs.Read(d, 1, caddyargs.String(&p.Cache))
	})
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_cache {
//		name            <name>
//		capacity        <size>
//		max_entry_size  <size>
//		purge_token     <token>       # {env.NAME} or {file./path} keeps it out of the config
//		identity        <placeholder> # {http.auth.user.id}: private variants keyed by the verified user
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
	return caddyargs.Block(d, h.unmarshalOption)
}

// maxCapacity bounds the capacity and max_entry_size options: 1 TiB.
const maxCapacity = 1 << 40

// unmarshalOption reads one spark_cache option at the dispenser's cursor.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	var err error
	switch opt := d.Val(); opt {
	case "name":
		err = caddyargs.Read(d, 1, caddyargs.String(&h.Name))
	case "capacity":
		err = caddyargs.Read(d, 1, caddyargs.Size(&h.Capacity, 0, maxCapacity))
	case "max_entry_size":
		err = caddyargs.Read(d, 1, caddyargs.Size(&h.MaxEntrySize, 0, maxCapacity))
	case "purge_token":
		// No argument (an unset {$ENV} placeholder) leaves purges off.
		err = caddyargs.Read(d, 0, caddyargs.String(&h.PurgeToken))
	case "identity":
		err = caddyargs.Read(d, 1, caddyargs.String(&h.Identity))
	case "encodings":
		h.Encodings, err = caddyargs.List(d)
	case "redis":
		h.Redis, err = unmarshalRedis(d)
	case "rule":
		r, err := unmarshalRule(d)
		if err != nil {
			return err
		}
		h.Rules = append(h.Rules, r)
	default:
		err = unmarshalPolicyOption(d, &h.Defaults)
	}
	return err
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
		on, err := caddyargs.OnOff(d)
		if err != nil {
			return err
		}
		if opt == "private" {
			p.Private = &on
		} else {
			p.ETag = &on
		}
	case "vary":
		vary, err := caddyargs.List(d)
		if err != nil {
			return err
		}
		p.Vary = vary
	case "ignore_query":
		params, err := caddyargs.List(d)
		if err != nil {
			return err
		}
		p.IgnoreQuery = params
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
