package eventbus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configure the Redis bus, in the shape of the cache's
// tiered.RedisOptions. One address is a single node; several addresses,
// or Cluster, a Redis Cluster (sharded pub/sub); MasterName, a
// Sentinel-managed master (Addrs are then the sentinels).
type RedisOptions struct {
	// Addrs are the Redis nodes (host:port), or the sentinels.
	Addrs []string
	// Cluster forces Cluster mode with a single address.
	Cluster bool
	// MasterName is the Sentinel master's name; empty: no Sentinel.
	MasterName string
	// Username and Password authenticate to Redis (ACL user, or
	// requirepass when Username is empty).
	Username string
	Password string
	// DB holds the presence hashes (pub/sub ignores it). Not in a Cluster.
	DB int

	// KeyPrefix starts every channel and key. Default "spark:".
	KeyPrefix string
	// PoolSize is the connections per node for publishes and presence
	// updates; 0: go-redis's default (10 per CPU).
	PoolSize int
	// Timeouts. Defaults: dial 1 s, read and write 1 s.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PingInterval is how often an idle subscriber connection is checked:
	// one that stays silent for PingInterval + ReadTimeout is replaced.
	// Default 5 s.
	PingInterval time.Duration
	// ReconnectMin and ReconnectMax bound the wait between reconnection
	// attempts (doubling, with jitter). Defaults 100 ms and 5 s.
	ReconnectMin, ReconnectMax time.Duration

	// PresenceRefresh is how often a subscriber renews the presence of its
	// users; PresenceTTL how long a mark lasts unrenewed (a node that dies
	// leaves its users online that long at most). Defaults 15 s and 45 s.
	PresenceRefresh, PresenceTTL time.Duration
	// Node names this subscriber in the presence hashes. Default: random,
	// fresh at every start.
	Node string

	// Logger receives connection losses and recoveries. Default: slog's
	// default logger.
	Logger *slog.Logger
}

// DefaultRedisOptions returns the defaults for addrs.
func DefaultRedisOptions(addrs ...string) RedisOptions {
	return RedisOptions{
		Addrs: addrs, KeyPrefix: "spark:",
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PingInterval: 5 * time.Second, ReconnectMin: defaultReconnectMin, ReconnectMax: defaultReconnectMax,
		PresenceRefresh: 15 * time.Second, PresenceTTL: 45 * time.Second,
	}
}

// fill checks o and sets what is unset to the defaults.
func (o *RedisOptions) fill() error {
	if len(o.Addrs) == 0 {
		return errors.New("eventbus: redis needs at least one address")
	}
	if o.MasterName != "" && o.isCluster() {
		return errors.New("eventbus: redis: Sentinel (MasterName) and Cluster exclude each other")
	}
	d := DefaultRedisOptions()
	orDefault(&o.DialTimeout, d.DialTimeout)
	orDefault(&o.ReadTimeout, d.ReadTimeout)
	orDefault(&o.WriteTimeout, d.WriteTimeout)
	orDefault(&o.PingInterval, d.PingInterval)
	fillReconnect(&o.ReconnectMin, &o.ReconnectMax)
	orDefault(&o.PresenceRefresh, d.PresenceRefresh)
	orDefault(&o.PresenceTTL, d.PresenceTTL)
	if o.PresenceTTL <= o.PresenceRefresh {
		return fmt.Errorf("eventbus: redis presence TTL %s must exceed its refresh interval %s", o.PresenceTTL, o.PresenceRefresh)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = d.KeyPrefix
	}
	if o.Node == "" {
		var id [8]byte
		_, _ = rand.Read(id[:])
		o.Node = hex.EncodeToString(id[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

func (o *RedisOptions) isCluster() bool { return o.Cluster || len(o.Addrs) > 1 && o.MasterName == "" }

// client opens the go-redis client publishes and presence go through.
func (o *RedisOptions) client() redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         o.Addrs,
		IsClusterMode: o.isCluster(),
		MasterName:    o.MasterName,
		Username:      o.Username,
		Password:      o.Password,
		DB:            o.DB,
		PoolSize:      o.PoolSize,
		DialTimeout:   o.DialTimeout,
		ReadTimeout:   o.ReadTimeout,
		WriteTimeout:  o.WriteTimeout,
		MaxRetries:    1,
	})
}
