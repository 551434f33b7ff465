package tiered

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// probeEvery is how often a node that has lost Redis tries it again: the
// breaker's probe and the purge channel's re-subscription both run at this
// constant interval, so that a node notices Redis's return within it (plus
// one dial and one round trip). A constant interval, not a backoff: each
// attempt is one connection attempt to one server (refused at once while
// it is down), and every interval of lateness is a window in which an edge
// may serve an entry another edge purged during the outage.
const probeEvery = 100 * time.Millisecond

// breaker stops L2 traffic after consecutive failures and probes in the
// background, every probeEvery, until Redis answers again. While open, the
// cache runs on L1 alone and no request waits on Redis.
type breaker struct {
	open      atomic.Bool
	threshold int32
	fails     atomic.Int32

	mu      sync.Mutex
	probing bool
	probe   func(context.Context) error
	onOpen  func(err error)
	onClose func()
	ctx     context.Context
	wg      *sync.WaitGroup
	// wake makes a waiting probe run at once (the purge channel has just
	// re-subscribed: Redis answers).
	wake chan struct{}
}

// allow reports whether an L2 operation may run.
func (b *breaker) allow() bool { return !b.open.Load() }

func (b *breaker) success() { b.fails.Store(0) }

// failure records a failed operation; the threshold-th in a row opens the
// breaker.
func (b *breaker) failure(err error) {
	if b.fails.Add(1) < b.threshold || b.open.Swap(true) {
		return
	}
	b.onOpen(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.probing {
		return
	}
	b.probing = true
	b.wg.Add(1)
	go b.probeLoop()
}

// probeNow makes a waiting probe run at once; it does nothing while the
// breaker is closed.
func (b *breaker) probeNow() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// probeLoop probes every probeEvery (or at once when woken) until Redis
// answers, then closes the breaker.
func (b *breaker) probeLoop() {
	defer b.wg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.wake:
		}
		if b.probe(b.ctx) == nil {
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
			b.fails.Store(0)
			b.onClose()
			b.open.Store(false)
			return
		}
	}
}
