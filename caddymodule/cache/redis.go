package cache

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
	"github.com/spark-edge/spark/tiered"
)

// RedisConfig configures the Redis second tier.
type RedisConfig struct {
	// Addresses of the Redis node, the Cluster's seed nodes, or the
	// sentinels (with MasterName). Two or more addresses mean a Cluster.
	Addresses []string `json:"addresses"`
	// Cluster forces Cluster mode with a single seed address.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName selects Sentinel mode: the monitored master's name.
	MasterName string `json:"master_name,omitempty"`
	// Username is the ACL user Redis is used as (empty: the requirepass
	// password alone, or no authentication). Like purge_token it takes
	// runtime placeholders ({env.SPARK_REDIS_USER}, {file./path}),
	// resolved at provision so the config holds only their names; a
	// placeholder that comes out empty is an error.
	Username string `json:"username,omitempty"`
	// Password authenticates Username (or is the requirepass password).
	// Runtime placeholders as for Username ({env.SPARK_REDIS_PASSWORD}).
	Password string `json:"password,omitempty"`
	// DB is the database number (not in Cluster mode). Default 0.
	DB int `json:"db,omitempty"`
	// PoolSize is the most connections per node. Default 200.
	PoolSize int `json:"pool_size,omitempty"`
	// MinIdleConns is how many idle connections per node are kept open.
	// Default 50 (at most PoolSize).
	MinIdleConns int `json:"min_idle_conns,omitempty"`
	// DialTimeout bounds connecting to a node. Default 1s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReadTimeout bounds waiting for a reply. Default 250ms.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`
	// WriteTimeout bounds sending a command. Default 250ms.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// KeyPrefix starts every key and the purge channel. Default "spark:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Codec compresses stored values: s2 (default), zstd or none.
	Codec string `json:"codec,omitempty"`
}

// options returns the tiered store's Redis options, the credentials'
// placeholders resolved.
func (r *RedisConfig) options() (tiered.RedisOptions, error) {
	o := tiered.DefaultRedisOptions(r.Addresses...)
	o.Cluster, o.MasterName, o.DB = r.Cluster, r.MasterName, r.DB
	var err error
	if o.Username, err = resolveSecret(r.Username, true); err != nil {
		return o, fmt.Errorf("username: %w", err)
	}
	if o.Password, err = resolveSecret(r.Password, true); err != nil {
		return o, fmt.Errorf("password: %w", err)
	}
	if r.PoolSize > 0 {
		o.PoolSize = r.PoolSize
		o.MinIdleConns = min(o.MinIdleConns, r.PoolSize)
	}
	if r.MinIdleConns > 0 {
		o.MinIdleConns = r.MinIdleConns
	}
	if r.DialTimeout > 0 {
		o.DialTimeout = time.Duration(r.DialTimeout)
	}
	if r.ReadTimeout > 0 {
		o.ReadTimeout = time.Duration(r.ReadTimeout)
	}
	if r.WriteTimeout > 0 {
		o.WriteTimeout = time.Duration(r.WriteTimeout)
	}
	if r.KeyPrefix != "" {
		o.KeyPrefix = r.KeyPrefix
	}
	if r.Codec != "" {
		o.Codec = tiered.Codec(r.Codec)
	}
	return o, nil
}

// validate checks the settings (Addresses given, values in range).
func (r *RedisConfig) validate() error {
	if len(r.Addresses) == 0 {
		return fmt.Errorf("at least one address is required")
	}
	switch r.Codec {
	case "", "s2", "zstd", "none":
	default:
		return fmt.Errorf("codec %q: want s2, zstd or none", r.Codec)
	}
	if r.PoolSize < 0 || r.MinIdleConns < 0 || r.DB < 0 {
		return fmt.Errorf("pool_size, min_idle_conns and db must not be negative")
	}
	if r.MinIdleConns > 0 && r.PoolSize > 0 && r.MinIdleConns > r.PoolSize {
		return fmt.Errorf("min_idle_conns %d exceeds pool_size %d", r.MinIdleConns, r.PoolSize)
	}
	for _, d := range []caddy.Duration{r.DialTimeout, r.ReadTimeout, r.WriteTimeout} {
		if d < 0 || time.Duration(d) > duration.Max {
			return fmt.Errorf("timeout %s must be between 0 and %s", time.Duration(d), duration.Max)
		}
	}
	return nil
}
