// Package redisconf is the part of a Caddyfile `redis` block that says
// where Redis is and how to log in to it, shared by spark_cache's second
// tier and spark_realtime's event source so the two blocks take the same
// options with the same meaning. Each module embeds Config in its own
// config (its fields then sit at the top level of the module's JSON) and
// adds its own options.
package redisconf

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

// Config locates a Redis deployment: a single node, a Cluster or a
// Sentinel-managed master.
type Config struct {
	// Addresses of the Redis node, the Cluster's seed nodes, or the
	// sentinels (with MasterName). Two or more addresses mean a Cluster.
	Addresses []string `json:"addresses"`
	// Cluster forces Cluster mode with a single seed address.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName selects Sentinel mode: the monitored master's name.
	MasterName string `json:"master_name,omitempty"`
	// Username is the ACL user Redis is used as (empty: the requirepass
	// password alone, or no authentication). It takes runtime
	// placeholders ({env.SPARK_REDIS_USER}, {file./path}), resolved at
	// provision so the config holds only their names; a placeholder that
	// is unknown or comes out empty is an error.
	Username string `json:"username,omitempty"`
	// Password authenticates Username (or is the requirepass password).
	// Runtime placeholders as for Username ({env.SPARK_REDIS_PASSWORD}).
	Password string `json:"password,omitempty"`
	// DB is the database number (not in Cluster mode). Default 0.
	DB int `json:"db,omitempty"`
	// PoolSize is the most connections per node (the module's default
	// when 0).
	PoolSize int `json:"pool_size,omitempty"`
	// DialTimeout bounds connecting to a node, ReadTimeout waiting for a
	// reply, WriteTimeout sending a command (the module's defaults when 0).
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// KeyPrefix starts every key and channel. Default "spark:".
	KeyPrefix string `json:"key_prefix,omitempty"`
}

// Options returns a module's options for the block: for each option name
// the setters of its arguments, nil for a name the module does not add.
type Options func(opt string) []caddyargs.Setter

// UnmarshalBlock reads `<name> [<address...>] { … }` at the cursor (the
// block's name is the current token): the addresses, the options every
// redis block takes,
//
//	addresses     <address...>
//	cluster
//	master_name   <name>
//	username      <user>
//	password      <password>
//	db            <n>
//	pool_size     <n>
//	dial_timeout  <duration>
//	read_timeout  <duration>
//	write_timeout <duration>
//	key_prefix    <prefix>
//
// and those of more (nil: none). Each option takes exactly its arguments.
func (c *Config) UnmarshalBlock(d *caddyfile.Dispenser, more Options) error {
	c.Addresses = append(c.Addresses, d.RemainingArgs()...)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "addresses":
			args, err := caddyargs.List(d)
			if err != nil {
				return err
			}
			c.Addresses = append(c.Addresses, args...)
		case "cluster":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Cluster = true
		default:
			setters := c.option(opt)
			if setters == nil && more != nil {
				setters = more(opt)
			}
			if setters == nil {
				return d.Errf("unrecognized redis option %q", opt)
			}
			if err := caddyargs.Read(d, len(setters), setters...); err != nil {
				return err
			}
		}
	}
	if err := c.Validate(); err != nil {
		return d.Errf("redis: %v", err)
	}
	return nil
}

// option returns the setters of a shared one-argument option.
func (c *Config) option(opt string) []caddyargs.Setter {
	var s caddyargs.Setter
	switch opt {
	case "master_name":
		s = caddyargs.String(&c.MasterName)
	case "username":
		s = caddyargs.String(&c.Username)
	case "password":
		s = caddyargs.String(&c.Password)
	case "key_prefix":
		s = caddyargs.String(&c.KeyPrefix)
	case "db":
		s = caddyargs.Int(&c.DB, 0)
	case "pool_size":
		s = caddyargs.Int(&c.PoolSize, 0)
	case "dial_timeout":
		s = caddyargs.Duration(&c.DialTimeout, 0, duration.Max)
	case "read_timeout":
		s = caddyargs.Duration(&c.ReadTimeout, 0, duration.Max)
	case "write_timeout":
		s = caddyargs.Duration(&c.WriteTimeout, 0, duration.Max)
	default:
		return nil
	}
	return []caddyargs.Setter{s}
}

// Validate checks the settings: an address given, Sentinel and Cluster
// not both, numbers and timeouts in range.
func (c *Config) Validate() error {
	if len(c.Addresses) == 0 {
		return errors.New("at least one address is required")
	}
	if c.MasterName != "" && c.Cluster {
		return errors.New("master_name (Sentinel) and cluster exclude each other")
	}
	if c.PoolSize < 0 || c.DB < 0 {
		return errors.New("pool_size and db must not be negative")
	}
	for _, d := range []caddy.Duration{c.DialTimeout, c.ReadTimeout, c.WriteTimeout} {
		if d < 0 || time.Duration(d) > duration.Max {
			return fmt.Errorf("timeout %s must be between 0 and %s", time.Duration(d), duration.Max)
		}
	}
	return nil
}

// Credentials returns Username and Password with their runtime
// placeholders resolved. An unknown placeholder, or one that comes out
// empty, is an error, so a typo never becomes the credential itself.
func (c *Config) Credentials() (username, password string, err error) {
	repl := caddy.NewReplacer()
	if username, err = repl.ReplaceOrErr(c.Username, true, true); err != nil {
		return "", "", fmt.Errorf("redis username: resolve placeholders: %w", err)
	}
	if password, err = repl.ReplaceOrErr(c.Password, true, true); err != nil {
		return "", "", fmt.Errorf("redis password: resolve placeholders: %w", err)
	}
	return username, password, nil
}

// Timeouts copies the timeouts that are set into dial, read and write,
// leaving the others at the module's defaults.
func (c *Config) Timeouts(dial, read, write *time.Duration) {
	for _, t := range []struct {
		from caddy.Duration
		to   *time.Duration
	}{{c.DialTimeout, dial}, {c.ReadTimeout, read}, {c.WriteTimeout, write}} {
		if t.from > 0 {
			*t.to = time.Duration(t.from)
		}
	}
}
