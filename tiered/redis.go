package tiered

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spark-edge/spark/internal/redisconn"
)

// RedisOptions configure the Redis second tier. One address is a single
// node; several addresses, or Cluster, a Redis Cluster; MasterName, a
// Sentinel-managed master (Addrs are then the sentinels).
type RedisOptions struct {
	// Options locate Redis. PoolSize and MinIdleConns default to 200 and
	// 50 per node; timeouts to dial 1 s, read and write 250 ms (an L2
	// slower than that is worse than a miss).
	redisconn.Options

	// KeyPrefix starts every key and the purge channel. Default "spark:".
	KeyPrefix string
	// MaxTagMembers caps the entries a tag indexes in Redis; past it the
	// soonest-expiring ones leave L2 (see tagset.go). Default 10,000.
	MaxTagMembers int
	// Codec compresses values. Default s2 (see the README's measurements).
	Codec Codec
}

// DefaultRedisOptions returns the plan's settings for addrs.
func DefaultRedisOptions(addrs ...string) RedisOptions {
	return RedisOptions{
		Options: redisconn.Options{Addrs: addrs, PoolSize: 200, MinIdleConns: 50,
			DialTimeout: time.Second, ReadTimeout: 250 * time.Millisecond, WriteTimeout: 250 * time.Millisecond},
		KeyPrefix: "spark:", Codec: CodecS2, MaxTagMembers: 10000,
	}
}

func (o *RedisOptions) fill() error {
	d := DefaultRedisOptions()
	if err := o.Check(); err != nil {
		return fmt.Errorf("tiered: redis: %w", err)
	}
	if o.PoolSize <= 0 {
		o.PoolSize = d.PoolSize
	}
	if o.MinIdleConns < 0 || o.MinIdleConns > o.PoolSize {
		return fmt.Errorf("tiered: redis min idle %d must be between 0 and the pool size %d", o.MinIdleConns, o.PoolSize)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = d.DialTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.ReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = d.WriteTimeout
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = d.KeyPrefix
	}
	if o.Codec == "" {
		o.Codec = d.Codec
	}
	if o.MaxTagMembers <= 0 {
		o.MaxTagMembers = d.MaxTagMembers
	}
	return nil
}

// l2 is the Redis tier.
type l2 struct {
	client redis.UniversalClient
	// probeClient makes the client that probe dials Redis with.
	probeClient func() redis.UniversalClient
	prefix      string
	channel     string
	codec       *codec
	opTO        time.Duration
	batch       *getBatcher

	maxTagMembers int
}

func newL2(o RedisOptions) (*l2, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	cd, err := newCodec(o.Codec)
	if err != nil {
		return nil, err
	}
	client := o.Client()
	return &l2{
		client:      client,
		probeClient: func() redis.UniversalClient { return o.ProbeClient(probeDial) },
		prefix:      o.KeyPrefix,
		channel:     o.KeyPrefix + "purge",
		codec:       cd,
		opTO:        o.ReadTimeout + o.WriteTimeout,

		maxTagMembers: o.MaxTagMembers,
	}, nil
}

func (r *l2) entryKey(k string) string { return r.prefix + "k:" + k }

// get returns the raw entry (L1 layout) stored under key.
func (r *l2) get(ctx context.Context, key string) ([]byte, bool, error) {
	// No context timer on the hot path: the client's read and write
	// timeouts bound the command.
	b, err := r.batchedGet(ctx, key)
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	v, err := r.codec.decode(b)
	if err != nil {
		return nil, false, nil // a corrupt value is a miss, not an outage
	}
	return v, true, nil
}

// set writes an entry, stored now for ttl, and indexes it under its tags
// (see tagset.go). It returns the keys of entries that left a full tag set
// but could not be deleted from Redis: the caller must purge them.
func (r *l2) set(ctx context.Context, key string, entry []byte, ttl time.Duration, tags []string, now time.Time) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opTO)
	defer cancel()
	// Per-key commands only: in a Cluster each lands on its own slot's node
	// (the pipeline is split by node).
	var cards []*redis.IntCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.entryKey(key), r.codec.encode(entry), ttl)
		cards = r.addToTags(ctx, p, key, tags, ttl, now)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis set %q: %w", key, err)
	}
	orphans, err := r.trimTags(ctx, tags, cards)
	if err != nil {
		return orphans, fmt.Errorf("redis set %q: %w", key, err)
	}
	return nil, nil
}

// delEach removes entries and reports which existed.
func (r *l2) delEach(ctx context.Context, keys []string) ([]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*r.opTO+time.Duration(len(keys))*time.Millisecond)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Del(ctx, r.entryKey(k))
		}
		return nil
	})
	existed := make([]bool, len(keys))
	for i, c := range cmds {
		existed[i] = c.Val() > 0
	}
	if err != nil {
		return existed, fmt.Errorf("redis del: %w", err)
	}
	return existed, nil
}

// keysWithPrefix scans every master for entry keys starting with prefix.
func (r *l2) keysWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pattern := globEscape(r.entryKey(prefix)) + "*"
	strip := len(r.entryKey(""))
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val()[strip:])
		}
		return it.Err()
	}
	var err error
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return scan(ctx, c)
		})
	} else if c, ok := r.client.(*redis.Client); ok {
		err = scan(ctx, c)
	} else {
		err = errors.New("prefix purge is not supported on this Redis client type")
	}
	if err != nil {
		return keys, fmt.Errorf("redis scan %q: %w", prefix, err)
	}
	return keys, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *l2) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return r.client.Ping(ctx).Err()
}

// probeDial bounds a probe's connection attempt: a server that takes longer
// to accept is not back yet.
const probeDial = 250 * time.Millisecond

// probe reports whether Redis answers again, for the breaker: a PING on a
// connection of its own, dialled now (a client made for the probe and
// closed after it: the traffic pool stops dialling after failures and
// retries once a second, see redisconn.ProbeClient), then a PING through
// the traffic pool, so that the breaker closes only once traffic can flow.
func (r *l2) probe(ctx context.Context) error {
	pc := r.probeClient()
	ctx1, cancel := context.WithTimeout(ctx, probeDial+r.opTO)
	err := pc.Ping(ctx1).Err()
	cancel()
	_ = pc.Close()
	if err != nil {
		return fmt.Errorf("redis probe: %w", err)
	}
	return r.ping(ctx)
}

func (r *l2) close() error {
	r.codec.close()
	return r.client.Close()
}
