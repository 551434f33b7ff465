package eventbus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RedisPublisher is the origin's handle on the Redis bus: it publishes
// (PUBLISH, or SPUBLISH in a Cluster) and answers presence from the marks
// the subscribers keep. Safe for concurrent use.
type RedisPublisher struct {
	client  redis.UniversalClient
	names   naming
	sharded bool
}

// Interface guards.
var (
	_ Publisher = (*RedisPublisher)(nil)
	_ Presence  = (*RedisPublisher)(nil)
)

// NewRedisPublisher returns a publisher for the Redis deployment o
// describes. It connects lazily: an unreachable Redis fails publishes, not
// the constructor.
func NewRedisPublisher(o RedisOptions) (*RedisPublisher, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	return newRedisPublisher(&o), nil
}

func newRedisPublisher(o *RedisOptions) *RedisPublisher {
	return &RedisPublisher{client: o.Client(), names: newNaming(o.KeyPrefix), sharded: o.IsCluster()}
}

// Publish sends msgs to their users' channels in one pipeline (split by
// node in a Cluster), in order per user.
func (p *RedisPublisher) Publish(ctx context.Context, msgs ...Message) error {
	size := 0
	for i := range msgs {
		if err := checkMessage(&msgs[i]); err != nil {
			return err
		}
		size += 1 + 10 + len(msgs[i].Payload)
	}
	// One buffer holds every envelope: one allocation per call.
	buf := make([]byte, 0, size)
	envelope := func(m Message) []byte {
		start := len(buf)
		buf = appendEnvelope(buf, m)
		return buf[start:len(buf):len(buf)]
	}
	var err error
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		err = p.publish(ctx, p.client, msgs[0].UserID, envelope(msgs[0]))
	default:
		_, err = p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, m := range msgs {
				_ = p.publish(ctx, pl, m.UserID, envelope(m))
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("eventbus: redis publish of %d messages: %w", len(msgs), err)
	}
	return nil
}

func (p *RedisPublisher) publish(ctx context.Context, c redis.Cmdable, user int64, env []byte) error {
	if p.sharded {
		return c.SPublish(ctx, p.names.channel(user), env).Err()
	}
	return c.Publish(ctx, p.names.channel(user), env).Err()
}

// Online reports whether some subscriber node holds an unexpired presence
// mark for user.
func (p *RedisPublisher) Online(ctx context.Context, user int64) (bool, error) {
	return online(ctx, p.client, p.names, user)
}

// Close releases the connections.
func (p *RedisPublisher) Close() error { return p.client.Close() }
