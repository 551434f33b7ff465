package tiered

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// purgeMessage is a purge as published on the purge channel.
type purgeMessage struct {
	From      string   `json:"from,omitempty"`
	Keys      []string `json:"keys,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Prefix    string   `json:"prefix,omitempty"`
	HasPrefix bool     `json:"has_prefix,omitempty"`
}

// startL2 connects the Redis tier and subscribes to the purge channel. An
// unreachable Redis is not an error: the cache starts on L1 with the
// breaker open and connects when Redis answers.
func (c *Cache) startL2(o RedisOptions) error {
	r, err := newL2(o)
	if err != nil {
		return err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	c.node = hex.EncodeToString(id[:])
	c.l2 = r
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	r.startBatcher(ctx)
	c.retryWake, c.retryKick = make(chan struct{}, 1), make(chan struct{}, 1)
	c.wg.Add(1)
	go c.retryLoop(ctx)
	c.breaker = breaker{
		threshold: 3,
		probe:     r.ping,
		onOpen: func(err error) {
			c.stats.breakerOpens.Add(1)
			c.log.Warn("tiered: Redis unavailable, serving from L1 only until it answers", slog.Any("error", err))
		},
		onClose: func() {
			c.log.Info("tiered: Redis is back")
			c.kickRetrier()
		},
		ctx: ctx,
		wg:  &c.wg,
	}
	if err := r.ping(ctx); err != nil {
		c.breaker.fails.Store(c.breaker.threshold - 1)
		c.breaker.failure(err)
	}
	c.ps = r.client.Subscribe(ctx, r.channel)
	c.wg.Add(1)
	go c.subscribe(ctx)
	return nil
}

// l2Failed records a failed Redis operation.
func (c *Cache) l2Failed(err error) {
	c.stats.l2Errors.Add(1)
	c.breaker.failure(err)
}

// publish tells the other nodes about a purge.
func (c *Cache) publish(ctx context.Context, m purgeMessage) error {
	m.From = c.node
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode purge: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.l2.opTO)
	defer cancel()
	if err := c.l2.client.Publish(ctx, c.l2.channel, b).Err(); err != nil {
		return fmt.Errorf("redis publish purge: %w", err)
	}
	c.stats.purgesSent.Add(1)
	return nil
}

// subscribe receives the other nodes' purges until ctx ends. Every time the
// subscription is re-established after a loss, purges may have been missed
// meanwhile, so all of L1 is dropped.
func (c *Cache) subscribe(ctx context.Context) {
	defer c.wg.Done()
	subscribed := false
	for {
		msg, err := c.ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed {
				c.resetL1()
			}
			subscribed = true
		case *redis.Message:
			var pm purgeMessage
			if json.Unmarshal([]byte(m.Payload), &pm) != nil || pm.From == c.node {
				continue
			}
			c.applyRemote(ctx, pm)
			c.stats.purgesReceived.Add(1)
		}
	}
}

// applyRemote applies another node's purge to L1. The keys this node holds
// for it are deleted from L2 again: a fill of ours may have written one
// there just after the sender's delete. If that fails it is retried like a
// purge of our own, and meanwhile L2 reads of what m names are misses.
func (c *Cache) applyRemote(ctx context.Context, m purgeMessage) {
	p := c.pending.begin(m, purgeMessage{}) // before purgeLocal records it
	local := c.purgeLocal(m)
	if len(local) == 0 {
		c.pending.finish(p) // nothing of ours to delete from Redis
		return
	}
	keys := make([]string, 0, len(local))
	for k := range local {
		keys = append(keys, k)
	}
	p.do = purgeMessage{Keys: keys}
	if !c.breaker.allow() {
		c.deferPurge(p, errBreakerOpen)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
	defer cancel()
	existed, err := c.l2.delEach(ctx, keys)
	if err != nil {
		c.l2Failed(err)
		c.deferPurge(p, err)
		return
	}
	// What was still in L2 was written by one of our fills after the
	// sender's delete, and another node may have read it: purge it there.
	var resurrected []string
	for i, e := range existed {
		if e {
			resurrected = append(resurrected, keys[i])
		}
	}
	if len(resurrected) > 0 {
		if err := c.publish(ctx, purgeMessage{Keys: resurrected}); err != nil {
			c.l2Failed(err)
			p.do = purgeMessage{Keys: resurrected}
			c.deferPurge(p, err)
			return
		}
	}
	c.purges.record(m, false) // reached Redis: see pendingPurges
	c.pending.finish(p)
}

// resetL1 drops every L1 entry and the tag index.
func (c *Cache) resetL1() {
	c.purges.record(purgeMessage{}, true)
	c.mu.Lock()
	c.tags = make(map[string]map[string]struct{})
	c.mu.Unlock()
	_ = c.l1.Reset()
	c.stats.l1Resets.Add(1)
	c.log.Info("tiered: purge channel re-subscribed; dropped L1 (purges may have been missed)")
}
