package cache

import (
	"fmt"

	"github.com/spark-edge/spark/caddymodule/internal/redisconf"
	"github.com/spark-edge/spark/tiered"
)

// RedisConfig configures the Redis second tier: where Redis is (the
// options every Spark redis block shares) and how values are kept there.
type RedisConfig struct {
	redisconf.Config
	// MinIdleConns is how many idle connections per node are kept open.
	// Default 50 (at most PoolSize).
	MinIdleConns int `json:"min_idle_conns,omitempty"`
	// Codec compresses stored values: s2 (default), zstd or none.
	Codec string `json:"codec,omitempty"`
}

// options returns the tiered store's Redis options, the credentials'
// placeholders resolved.
func (r *RedisConfig) options() (tiered.RedisOptions, error) {
	o := tiered.DefaultRedisOptions(r.Addresses...)
	o.Cluster, o.MasterName, o.DB = r.Cluster, r.MasterName, r.DB
	var err error
	if o.Username, o.Password, err = r.Credentials(); err != nil {
		return o, err
	}
	if r.PoolSize > 0 {
		o.PoolSize = r.PoolSize
		o.MinIdleConns = min(o.MinIdleConns, r.PoolSize)
	}
	if r.MinIdleConns > 0 {
		o.MinIdleConns = r.MinIdleConns
	}
	r.Timeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
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
	if err := r.Config.Validate(); err != nil {
		return err
	}
	switch r.Codec {
	case "", "s2", "zstd", "none":
	default:
		return fmt.Errorf("codec %q: want s2, zstd or none", r.Codec)
	}
	if r.MinIdleConns < 0 {
		return fmt.Errorf("min_idle_conns must not be negative")
	}
	if r.MinIdleConns > 0 && r.PoolSize > 0 && r.MinIdleConns > r.PoolSize {
		return fmt.Errorf("min_idle_conns %d exceeds pool_size %d", r.MinIdleConns, r.PoolSize)
	}
	return nil
}
