package tiered

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	c.breaker = breaker{
		threshold: 3,
		probe:     r.ping,
		onOpen: func(err error) {
			c.stats.breakerOpens.Add(1)
			c.log.Warn("tiered: Redis unavailable, serving from L1 only until it answers", slog.Any("error", err))
		},
		onClose: func() {
			c.log.Info("tiered: Redis is back")
			c.replay(ctx)
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
func (c *Cache) publish(ctx context.Context, m purgeMessage) {
	m.From = c.node
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.l2.opTO)
	defer cancel()
	if err := c.l2.client.Publish(ctx, c.l2.channel, b).Err(); err != nil {
		c.l2Failed(err)
		c.remember(m)
		return
	}
	c.stats.purgesSent.Add(1)
}

// remember keeps a purge made while Redis was away, to replay on return.
func (c *Cache) remember(m purgeMessage) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if len(c.pending) >= maxPending {
		c.overflow = true
		return
	}
	c.pending = append(c.pending, m)
}

// replay applies the purges made while Redis was away to L2 and publishes
// them. If more were made than remembered, every L2 entry is dropped.
func (c *Cache) replay(ctx context.Context) {
	c.pendMu.Lock()
	pending, overflow := c.pending, c.overflow
	c.pending, c.overflow = nil, false
	c.pendMu.Unlock()
	if overflow {
		c.log.Warn("tiered: too many purges while Redis was away; dropping all of L2")
		pending = []purgeMessage{{HasPrefix: true}}
	}
	for _, m := range pending {
		local := map[string]bool{}
		for _, k := range m.Keys {
			local[k] = false
		}
		if _, err := c.purgeL2(ctx, m, local); err != nil {
			c.log.Warn("tiered: replay purge", slog.Any("error", err))
		}
		c.publish(ctx, m)
	}
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
// there just after the sender's delete.
func (c *Cache) applyRemote(ctx context.Context, m purgeMessage) {
	local := c.purgeLocal(m)
	if len(local) == 0 || !c.breaker.allow() {
		return
	}
	keys := make([]string, 0, len(local))
	for k := range local {
		keys = append(keys, k)
	}
	existed, err := c.l2.delEach(ctx, keys)
	if err != nil {
		c.l2Failed(err)
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
		c.publish(ctx, purgeMessage{Keys: resurrected})
	}
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
