// Package backoff spaces the attempts of a retry loop: the wait doubles
// from a minimum up to a maximum, and each wait is drawn at random from the
// upper half of its step (jitter), so clients cut off together do not all
// come back at once. The event bus's reconnections and spark_realtime's
// fetches from the origin retry this way.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is one retry loop's waits. Set Min and Max (Max at least Min);
// the zero step starts at Min.
type Backoff struct {
	// Min is the first step, Max the largest.
	Min, Max time.Duration
	step     time.Duration
}

// Next returns how long to wait before the next attempt: within
// [step/2, step], the step doubling on each call up to Max.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.step == 0:
		b.step = b.Min
	case b.step < b.Max:
		b.step = min(2*b.step, b.Max)
	}
	half := b.step / 2
	return half + rand.N(b.step-half+1)
}

// Reset starts the next series of attempts from Min again.
func (b *Backoff) Reset() { b.step = 0 }

// Wait sleeps Next(); it reports false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d; it reports false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
