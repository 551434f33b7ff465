package tiered

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	// At is the write position of a tag purge (PurgeTagsAt); 0 none.
	At uint64 `json:"at,omitempty"`
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
	c.epoch = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	r.startBatcher(ctx)
	c.retryWake, c.retryKick = make(chan struct{}, 1), make(chan struct{}, 1)
	c.wg.Add(1)
	go c.retryLoop(ctx)
	c.breaker = breaker{
		threshold: 3,
		probe:     r.probe,
		onOpen: func(err error) {
			c.stats.breakerOpens.Add(1)
			c.log.Warn("tiered: Redis unavailable, serving from L1 only until it answers", slog.Any("error", err))
		},
		onClose: func() {
			c.log.Info("tiered: Redis is back")
			c.kickRetrier()
		},
		ctx:  ctx,
		wg:   &c.wg,
		wake: make(chan struct{}, 1),
	}
	pingErr := r.ping(ctx)
	if pingErr != nil {
		c.breaker.fails.Store(c.breaker.threshold - 1)
		c.breaker.failure(fmt.Errorf("redis ping at start: %w", pingErr))
	}
	c.ps = r.client.Subscribe(ctx, r.channel)
	if pingErr == nil {
		// Wait for the subscription, so that L2 serves from the start
		// (L2 hits count only while this node hears purges).
		if msg, err := c.ps.ReceiveTimeout(ctx, firstSubscribeWait); err == nil {
			if m, ok := msg.(*redis.Subscription); ok && m.Kind == "subscribe" {
				c.hearing.Store(true)
			}
		}
	}
	c.wg.Add(1)
	go c.subscribe(ctx)
	return nil
}

// firstSubscribeWait bounds how long New waits for the purge channel's
// subscription when Redis answered its PING.
const firstSubscribeWait = 2 * time.Second

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

// A node hears the other nodes' purges only while its purge channel
// subscription is up. Redis being down for this node (a restart, a
// partition) is a gap in what it heard, and a gap is closed like this:
//
//   - While the subscription is down, L1 keeps answering (no request fails,
//     and the origin is not handed the whole read load at the moment one of
//     its shields is gone), though an entry another node purged meanwhile
//     may be served old: that is the price of serving through the outage.
//     L2 answers nothing ("hearing" is false): a value read from Redis now
//     could be promoted into L1 just before a purge this node will not hear.
//     Nor are fills written to L2: one that read the origin before another
//     node's edit and stored after that node's purge would stay in Redis,
//     where applyRemote would otherwise have deleted it again.
//   - The subscription is retried every probeEvery on a connection of its
//     own, dialled each time (go-redis's pub/sub connections are not pooled,
//     so nothing throttles the dialling). The moment Redis accepts it, every
//     entry stored before is treated as purged: L1 and the hot copies are
//     dropped ("everything" in the purge log, which also stops fills in
//     flight from storing), the breaker is told to probe at once, and L2
//     hits stay misses for l2Settle.
//   - l2Settle is for the other nodes' deferred purges. A purge made on
//     another node during the outage reaches Redis only when that node has
//     noticed Redis is back (its probe, every probeEvery, then its retrier);
//     until then Redis may still hold the entry (it does when Redis kept its
//     data, as after a partition; after a restart it is empty). This node
//     may re-subscribe first, so for l2Settle it fills from the origin, not
//     from Redis, and the settled purges remove what they name from L2 and,
//     published, from this node's L1.
//
// So once Redis answers again, this node serves no entry purged elsewhere
// during the outage later than probeEvery plus one dial and one SUBSCRIBE
// round trip after that (measured in TestNoStaleAfterRedisReturns and the
// chaos Redis drill), provided the other nodes' deferred purges get through
// within l2Settle of their noticing.

// l2Settle is how long L2 hits stay misses after the purge channel was
// re-established after a gap: another node's probe notices Redis within
// probeEvery, but its traffic pool may still be waiting to dial (go-redis
// tries once a second after a run of failed dials), and its deferred purges
// then go out in a burst.
const l2Settle = 2 * time.Second

// l2Trusted reports whether an L2 hit may be served and promoted: the purge
// channel is up and has been for l2Settle since it came back after a gap.
func (c *Cache) l2Trusted() bool {
	return c.hearing.Load() && time.Since(c.epoch) >= time.Duration(c.settleUntil.Load())
}

// A subscription can die without its connection saying so: a Redis host
// that loses power or a network that drops packets sends no reset, and a
// subscriber waits for messages forever, deaf, while a Redis that answers
// at the same address again (a failover, a restarted VM) takes the other
// nodes' purges. So a subscription quiet for idleCheck is asked for a
// PING; if no message at all (the PONG or a purge) comes within pongWait,
// the connection is dropped and re-established (go-redis does that when
// the read deadline comes from the context), and that is a gap like any
// other.
const (
	idleCheck = 2 * time.Second
	pongWait  = 3 * time.Second
)

// subscribe receives the other nodes' purges until ctx ends, and closes
// the gaps in them (see above).
func (c *Cache) subscribe(ctx context.Context) {
	defer c.wg.Done()
	pinged := false
	for {
		msg, err := c.receive(ctx, pinged)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			if !pinged && isTimeout(err) {
				// Quiet: ask. A PING that cannot be sent is a lost
				// connection (go-redis has dropped it).
				if err = c.ps.Ping(ctx); err == nil {
					pinged = true
					continue
				}
			}
			pinged = false
			if c.hearing.Swap(false) {
				c.log.Warn("tiered: purge channel lost; serving L1 until it is back, then dropping L1", slog.Any("error", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(probeEvery):
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || c.hearing.Load() {
				continue
			}
			// A gap (or a start without Redis) ends: whatever L1 holds
			// may have been purged elsewhere meanwhile.
			c.resetL1()
			c.settleUntil.Store(int64(time.Since(c.epoch) + l2Settle))
			c.hearing.Store(true)
			c.breaker.probeNow()
			c.kickRetrier() // our own deferred purges, at once
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

// receive waits for the subscription's next message: up to idleCheck
// (a timeout keeps the connection), or, once a PING was sent, up to
// pongWait (a timeout drops it: see idleCheck).
func (c *Cache) receive(ctx context.Context, pinged bool) (any, error) {
	if !pinged {
		return c.ps.ReceiveTimeout(ctx, idleCheck)
	}
	ctx, cancel := context.WithTimeout(ctx, pongWait)
	defer cancel()
	msg, err := c.ps.Receive(ctx)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("no answer to a PING on the purge channel within %s: %w", pongWait, err)
	}
	return msg, err
}

// isTimeout reports whether err is a network read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
	c.log.Info("tiered: purge channel subscribed after a gap; dropped L1 (purges may have been missed)")
}
