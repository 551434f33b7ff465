package tiered

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// breaker stops L2 traffic after consecutive failures and probes in the
// background until Redis answers again. While open, the cache runs on L1
// alone and no request waits on Redis.
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

// probeLoop pings with backoff (250 ms doubling to 5 s) until Redis answers.
func (b *breaker) probeLoop() {
	defer b.wg.Done()
	wait := 250 * time.Millisecond
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(wait):
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
		wait = min(2*wait, 5*time.Second)
	}
}
