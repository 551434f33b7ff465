package loadtest

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// expectedArrivals returns the number of arrivals s plans in [0, t).
func expectedArrivals(s Schedule, t time.Duration) float64 {
	if t <= 0 || s.Rate <= 0 {
		return 0
	}
	t = min(t, s.Duration)
	ramp, x := s.Ramp.Seconds(), t.Seconds()
	if x <= ramp {
		return s.Rate * x * x / (2 * ramp)
	}
	return s.Rate*ramp/2 + s.Rate*(x-ramp)
}

// collect returns the arrivals s plans.
func collect(s Schedule, rng *rand.Rand) []time.Duration {
	var out []time.Duration
	for t := range s.Arrivals(rng) {
		out = append(out, t)
	}
	return out
}

func TestScheduleConstantRate(t *testing.T) {
	s := Schedule{Rate: 100, Duration: 2 * time.Second}
	got := collect(s, nil)
	if len(got) != 200 {
		t.Fatalf("arrivals = %d, want 200", len(got))
	}
	for i, at := range got {
		want := time.Duration((float64(i) + 0.5) * float64(10*time.Millisecond))
		if d := at - want; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("arrival %d at %s, want %s", i, at, want)
		}
	}
}

func TestScheduleRampUp(t *testing.T) {
	s := Schedule{Rate: 1000, Ramp: 2 * time.Second, Duration: 5 * time.Second}
	got := collect(s, nil)
	// 1000/s * 2s / 2 during the ramp, then 3000.
	if want := 4000; math.Abs(float64(len(got)-want)) > 1 {
		t.Fatalf("arrivals = %d, want %d", len(got), want)
	}
	perSecond := make([]int, 5)
	for i, at := range got {
		if i > 0 && at < got[i-1] {
			t.Fatalf("arrivals out of order at %d: %s < %s", i, at, got[i-1])
		}
		perSecond[int(at/time.Second)]++
	}
	// Linear ramp: 250 in the first second, 750 in the second, then 1000.
	want := []int{250, 750, 1000, 1000, 1000}
	for i := range want {
		if math.Abs(float64(perSecond[i]-want[i])) > 1 {
			t.Errorf("second %d: %d arrivals, want %d (all: %v)", i, perSecond[i], want[i], perSecond)
		}
	}
	if c := expectedArrivals(s, 5*time.Second); c != 4000 {
		t.Errorf("expectedArrivals(5s) = %g, want 4000", c)
	}
}

func TestSchedulePoisson(t *testing.T) {
	s := Schedule{Rate: 2000, Ramp: time.Second, Duration: 6 * time.Second, Poisson: true}
	got := collect(s, rand.New(rand.NewPCG(1, 2)))
	want := expectedArrivals(s, s.Duration) // 11000
	// A Poisson count has sd sqrt(n) ~ 105; 5 sd is a safe bound.
	if math.Abs(float64(len(got))-want) > 5*math.Sqrt(want) {
		t.Fatalf("arrivals = %d, want about %g", len(got), want)
	}
	// Gaps in the steady part are exponential: their coefficient of
	// variation is about 1 (evenly spaced arrivals would give 0).
	var gaps []float64
	for i := 1; i < len(got); i++ {
		if got[i-1] > 2*time.Second {
			gaps = append(gaps, float64(got[i]-got[i-1]))
		}
	}
	var mean, sq float64
	for _, g := range gaps {
		mean += g
	}
	mean /= float64(len(gaps))
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	cv := math.Sqrt(sq/float64(len(gaps))) / mean
	if cv < 0.9 || cv > 1.1 {
		t.Errorf("coefficient of variation of gaps = %.3f, want ~1", cv)
	}
	if m := time.Duration(mean); m < 450*time.Microsecond || m > 550*time.Microsecond {
		t.Errorf("mean gap %s, want ~500µs", m)
	}
}

func TestScheduleZeroRate(t *testing.T) {
	if got := collect(Schedule{Rate: 0, Duration: time.Second}, nil); len(got) != 0 {
		t.Errorf("zero rate gave %d arrivals", len(got))
	}
}
