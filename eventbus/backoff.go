package eventbus

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff spaces reconnection attempts: the wait doubles from min up to
// max, and each wait is drawn at random from the upper half of its step
// (jitter), so edges cut off together do not all come back at once.
type backoff struct {
	min, max time.Duration
	step     time.Duration
}

// next returns how long to wait before the next attempt.
func (b *backoff) next() time.Duration {
	switch {
	case b.step == 0:
		b.step = b.min
	case b.step < b.max:
		b.step = min(2*b.step, b.max)
	}
	half := b.step / 2
	return half + rand.N(b.step-half+1)
}

// reset starts the next series of attempts from min again.
func (b *backoff) reset() { b.step = 0 }

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// signal sends on a one-slot channel without blocking: a signal already
// pending absorbs this one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
