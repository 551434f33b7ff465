package loadtest

import (
	"iter"
	"math"
	"math/rand/v2"
	"time"
)

// Schedule is an open-model arrival plan: the rate rises linearly from 0 to
// Rate over Ramp, then stays at Rate until Duration (which includes Ramp).
// Arrivals are planned ahead of time and never wait for responses, so a slow
// server cannot slow the offered load (no coordinated omission).
type Schedule struct {
	// Rate is the steady arrival rate per second.
	Rate float64
	// Ramp is the time to reach Rate from 0.
	Ramp time.Duration
	// Duration is the whole run, ramp included.
	Duration time.Duration
	// Poisson spaces arrivals exponentially (a Poisson process) instead of
	// evenly.
	Poisson bool
}

// timeAt is the time by which lambda arrivals are due: the inverse of the
// expected arrival count, Rate·t²/(2·Ramp) during the ramp and growing by
// Rate a second after it.
func (s Schedule) timeAt(lambda float64) time.Duration {
	T := s.Ramp.Seconds()
	var x float64
	if rampArrivals := s.Rate * T / 2; lambda <= rampArrivals && T > 0 {
		x = math.Sqrt(2 * T * lambda / s.Rate)
	} else {
		x = T + (lambda-rampArrivals)/s.Rate
	}
	return time.Duration(x * float64(time.Second))
}

// Arrivals yields the planned arrival offsets from the start, in order.
// Evenly spaced arrivals sit at the middle of their slots; Poisson arrivals
// use rng (which must not be shared with other goroutines).
func (s Schedule) Arrivals(rng *rand.Rand) iter.Seq[time.Duration] {
	return func(yield func(time.Duration) bool) {
		if s.Rate <= 0 {
			return
		}
		lambda := 0.0
		for n := 0; ; n++ {
			if s.Poisson {
				lambda += rng.ExpFloat64()
			} else {
				lambda = float64(n) + 0.5
			}
			t := s.timeAt(lambda)
			if t >= s.Duration {
				return
			}
			if !yield(t) {
				return
			}
		}
	}
}
