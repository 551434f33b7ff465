package eventbus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/spark-edge/spark/internal/redisconn"
)

// RedisOptions configure the Redis bus, in the shape of the cache's
// tiered.RedisOptions. One address is a single node; several addresses,
// or Cluster, a Redis Cluster (sharded pub/sub); MasterName, a
// Sentinel-managed master (Addrs are then the sentinels).
type RedisOptions struct {
	// Options locate Redis. DB holds the presence hashes (pub/sub ignores
	// it). PoolSize is the connections per node for publishes and presence
	// updates (0: go-redis's default, 10 per CPU). Timeout defaults: dial,
	// read and write 1 s each.
	redisconn.Options

	// KeyPrefix starts every channel and key. Default "spark:".
	KeyPrefix string
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
		Options:      redisconn.Options{Addrs: addrs, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second},
		KeyPrefix:    "spark:",
		PingInterval: 5 * time.Second, ReconnectMin: defaultReconnectMin, ReconnectMax: defaultReconnectMax,
		PresenceRefresh: 15 * time.Second, PresenceTTL: 45 * time.Second,
	}
}

// fill checks o and sets what is unset to the defaults.
func (o *RedisOptions) fill() error {
	if err := o.Check(); err != nil {
		return fmt.Errorf("eventbus: redis: %w", err)
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
