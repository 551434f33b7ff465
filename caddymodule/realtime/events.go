package realtime

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

func init() {
	caddy.RegisterModule(OriginEvents{})
	caddy.RegisterModule(RedisEvents{})
}

// OriginEvents is the event source spark.realtime.events.origin: the
// origin's own event stream (GET /internal/events), for deployments
// without Redis (the embedded default of make run).
type OriginEvents struct {
	// URL is the origin's base URL (the stream is at /internal/events) or
	// the stream's ws(s):// URL. The Caddyfile defaults it to the
	// handler's origin.
	URL string `json:"url"`
	// Token is the shared secret the origin's stream expects (its
	// --events-token), best as a placeholder: {env.SPARK_EVENTS_TOKEN}.
	Token string `json:"token"`

	token string // resolved
}

// CaddyModule returns the Caddy module information.
func (OriginEvents) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "spark.realtime.events.origin", New: func() caddy.Module { return new(OriginEvents) }}
}

// Provision resolves the token.
func (o *OriginEvents) Provision(caddy.Context) error {
	if o.URL == "" {
		return errors.New("events origin: url is required")
	}
	t, err := tokenconf.Resolve(caddy.NewReplacer(), o.Token, true)
	if err != nil {
		return fmt.Errorf("events origin: token: %w", err)
	}
	o.token = t
	return nil
}

// UnmarshalCaddyfile reads `origin <token> [<url>]`.
func (o *OriginEvents) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source's name
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	o.Token = args[0]
	if len(args) == 2 {
		o.URL = args[1]
	}
	if d.NextBlock(d.Nesting()) {
		return d.Err("events origin takes no block")
	}
	return nil
}

// RedisEvents is the event source spark.realtime.events.redis: Redis
// pub/sub (sharded pub/sub in a Cluster), with presence kept in Redis.
type RedisEvents struct {
	// Addresses of the Redis node, the Cluster's seed nodes, or the
	// sentinels.
	Addresses []string `json:"addresses"`
	// Cluster forces Cluster mode with a single address.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName is the Sentinel master's name.
	MasterName string `json:"master_name,omitempty"`
	// Username and Password authenticate to Redis; placeholders
	// ({env.NAME}, {file./path}) are resolved at provision.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB holds the presence hashes (not in a Cluster).
	DB int `json:"db,omitempty"`
	// KeyPrefix starts every channel and key (default "spark:", as the
	// origin's --events-redis-prefix).
	KeyPrefix string `json:"key_prefix,omitempty"`
	// PoolSize is the connections per node for publishes.
	PoolSize int `json:"pool_size,omitempty"`
	// DialTimeout, ReadTimeout and WriteTimeout (default 1s each).
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	username, password string // resolved
}

// CaddyModule returns the Caddy module information.
func (RedisEvents) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "spark.realtime.events.redis", New: func() caddy.Module { return new(RedisEvents) }}
}

// Provision resolves the credentials.
func (r *RedisEvents) Provision(caddy.Context) error {
	if len(r.Addresses) == 0 {
		return errors.New("events redis: at least one address")
	}
	repl := caddy.NewReplacer()
	var err error
	if r.username, err = tokenconf.Resolve(repl, r.Username, false); err != nil {
		return fmt.Errorf("events redis: username: %w", err)
	}
	if r.password, err = tokenconf.Resolve(repl, r.Password, false); err != nil {
		return fmt.Errorf("events redis: password: %w", err)
	}
	return nil
}

// UnmarshalCaddyfile reads `redis [<address...>] { … }`:
//
//	redis [<address...>] {
//		addresses     <address...>
//		cluster
//		master_name   <name>
//		username      <user>
//		password      <password>
//		db            <n>
//		key_prefix    <prefix>
//		pool_size     <n>
//		dial_timeout  <duration>
//		read_timeout  <duration>
//		write_timeout <duration>
//	}
func (r *RedisEvents) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source's name
	r.Addresses = d.RemainingArgs()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "addresses":
			r.Addresses = append(r.Addresses, d.RemainingArgs()...)
		case "cluster":
			if d.NextArg() {
				return d.ArgErr()
			}
			r.Cluster = true
		default:
			setter := r.optionArg(opt)
			if setter == nil {
				return d.Errf("unknown events redis option %q", opt)
			}
			if err := setArgs(d, 1, setter); err != nil {
				return err
			}
		}
	}
	if len(r.Addresses) == 0 {
		return d.Err("events redis: at least one address")
	}
	return nil
}

// optionArg returns the setter of a one-argument redis option, nil for an
// unknown one.
func (r *RedisEvents) optionArg(opt string) argSetter {
	switch opt {
	case "master_name":
		return stringArg(&r.MasterName)
	case "username":
		return stringArg(&r.Username)
	case "password":
		return stringArg(&r.Password)
	case "key_prefix":
		return stringArg(&r.KeyPrefix)
	case "db":
		return intArg(&r.DB, 0)
	case "pool_size":
		return intArg(&r.PoolSize, 0)
	case "dial_timeout":
		return durationArg(&r.DialTimeout)
	case "read_timeout":
		return durationArg(&r.ReadTimeout)
	case "write_timeout":
		return durationArg(&r.WriteTimeout)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*OriginEvents)(nil)
	_ caddyfile.Unmarshaler = (*OriginEvents)(nil)
	_ EventSource           = (*OriginEvents)(nil)
	_ caddy.Provisioner     = (*RedisEvents)(nil)
	_ caddyfile.Unmarshaler = (*RedisEvents)(nil)
	_ EventSource           = (*RedisEvents)(nil)
)
