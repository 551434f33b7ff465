package tiered

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// A purge whose Redis part fails is retried in the background until it gets
// through: until then Redis still holds what it purged and the other edges,
// which learn of purges only from Redis, still serve it. The retry does the
// whole Redis part again (deletes, with the keys a failed attempt had
// already found, and the PUBLISH), at once after the failure and then with
// exponential backoff (retryBase doubling to retryMax, half of each wait
// random so that edges do not retry in step).
//
// It runs whatever the circuit breaker says: the breaker opens after three
// failures in a row and one failed purge must not wait for that (nor for it
// to close again), and a queued purge retried while Redis is down costs one
// failed command per backoff step in the background, no request. When the
// breaker closes, the retrier starts again at once.
//
// Purges run on a context of their own (the caller's values, not its
// cancellation, plus purgeTimeout): a client disconnecting mid-purge must
// not leave it half done. The start of a failure streak is logged once, as
// is its end; every deferred purge is counted (Stats.PurgesDeferred).

const (
	retryBase = 25 * time.Millisecond
	retryMax  = 5 * time.Second
	// purgeTimeout bounds one purge's Redis part (a prefix purge scans the
	// whole keyspace: the scan alone may take 30 s).
	purgeTimeout = 45 * time.Second
	// closeFlush bounds the last attempt at queued purges when the cache
	// closes.
	closeFlush = time.Second
)

// errBreakerOpen defers a purge made while the breaker is open.
var errBreakerOpen = errors.New("tiered: Redis circuit open")

// detach returns a context for a purge: the caller's values without its
// cancellation, with a timeout of its own.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), purgeTimeout)
}

// deferPurge queues a purge whose Redis part failed with err for the retrier.
func (c *Cache) deferPurge(p *pendingPurge, err error) {
	c.stats.purgesDeferred.Add(1)
	first, overflowed := c.pending.enqueue(p)
	if first {
		c.log.Warn("tiered: a purge did not reach Redis; retrying in the background", slog.Any("error", err))
	}
	if overflowed {
		c.stats.purgeOverflows.Add(1)
		c.log.Warn("tiered: too many purges waiting for Redis; every Redis entry will be dropped when it answers", slog.Int("max_pending", maxPending))
	}
	select {
	case c.retryWake <- struct{}{}:
	default:
	}
}

// kickRetrier makes the retrier try now, backoff or not (Redis is back).
func (c *Cache) kickRetrier() {
	select {
	case c.retryKick <- struct{}{}:
	default:
	}
}

// retryLoop runs queued purges until ctx ends.
func (c *Cache) retryLoop(ctx context.Context) {
	defer c.wg.Done()
	fails, retried := 0, 0
	for {
		p, cut := c.pending.next()
		if p == nil {
			if retried > 0 {
				c.log.Info("tiered: deferred purges reached Redis", slog.Int("purges", retried))
			}
			fails, retried = 0, 0
			select {
			case <-ctx.Done():
				return
			case <-c.retryWake:
			case <-c.retryKick:
			}
			continue
		}
		if err := c.retryPurge(ctx, p); err != nil {
			c.pending.failed(p, cut)
			if ctx.Err() != nil {
				return
			}
			fails++
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryBackoff(fails)):
			case <-c.retryKick:
			}
			continue
		}
		c.purges.record(p.blocks, false) // reached Redis: see pendingPurges
		retried += c.pending.succeeded(p, cut)
		fails = 0
	}
}

// retryBackoff returns the wait after the n-th failure in a row: retryBase
// doubling up to retryMax, the upper half random.
func retryBackoff(n int) time.Duration {
	d := retryMax
	if n < 16 {
		d = min(retryBase<<(n-1), retryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// retryPurge runs a queued purge's Redis part once. On failure p.do keeps
// the keys this attempt found (a tag set it took is gone from Redis).
func (c *Cache) retryPurge(ctx context.Context, p *pendingPurge) error {
	ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
	defer cancel()
	local := make(map[string]bool, len(p.do.Keys))
	for _, k := range p.do.Keys {
		local[k] = false
	}
	_, err := c.purgeL2(ctx, p.do, local)
	if err == nil {
		err = c.publish(ctx, p.do)
	}
	if err != nil {
		p.do = withKeys(p.do, local)
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) { // not the cache closing
			c.l2Failed(err)
		}
		return err
	}
	c.breaker.success()
	return nil
}

// withKeys returns m naming also keys, the keys an attempt at m found. A
// prefix purge finds them again by scanning: it keeps its own.
func withKeys(m purgeMessage, keys map[string]bool) purgeMessage {
	if m.HasPrefix {
		return m
	}
	all := make([]string, 0, len(keys))
	for k := range keys {
		all = append(all, k)
	}
	for _, k := range m.Keys {
		if _, ok := keys[k]; !ok {
			all = append(all, k)
		}
	}
	m.Keys = all
	return m
}

// flushPending makes one last attempt, within closeFlush, at the queued
// purges, stopping at the first failure.
func (c *Cache) flushPending() {
	ctx, cancel := context.WithTimeout(context.Background(), closeFlush)
	defer cancel()
	for ctx.Err() == nil {
		p, cut := c.pending.next()
		if p == nil {
			return
		}
		if err := c.retryPurge(ctx, p); err != nil {
			c.pending.failed(p, cut)
			c.log.Warn("tiered: closing with purges that did not reach Redis", slog.Int("purges", c.pending.len()), slog.Any("error", err))
			return
		}
		c.purges.record(p.blocks, false)
		c.pending.succeeded(p, cut)
	}
}
