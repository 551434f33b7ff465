package realtime

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/redisconf"
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
	// Config locates Redis; its DB holds the presence hashes (pub/sub
	// ignores it) and KeyPrefix (default "spark:", as the origin's
	// --events-redis-prefix) starts every channel and key.
	redisconf.Config

	username, password string // resolved
}

// CaddyModule returns the Caddy module information.
func (RedisEvents) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "spark.realtime.events.redis", New: func() caddy.Module { return new(RedisEvents) }}
}

// Provision resolves the credentials.
func (r *RedisEvents) Provision(caddy.Context) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("events redis: %w", err)
	}
	var err error
	if r.username, r.password, err = r.Credentials(); err != nil {
		return fmt.Errorf("events redis: %w", err)
	}
	return nil
}

// UnmarshalCaddyfile reads `redis [<address...>] { … }`, the options
// every Spark redis block takes (see redisconf.Config.UnmarshalBlock).
func (r *RedisEvents) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source's name
	return r.UnmarshalBlock(d, nil)
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
