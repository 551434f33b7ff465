package gcpace

import (
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// The percent puts the runtime's goal (live + (live + stacks + globals) ×
// percent/100) at live + headroom, rounded up by at most one percent of
// the base; or it is clamped: never above Percent (never more memory than
// GOGC=Percent), never below 1.
func TestGCPercentPutsTheGoalAtLivePlusHeadroom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		s := Stats{Live: r.Uint64N(8 << 30), StackScan: r.Uint64N(256 << 20), GlobalsScan: r.Uint64N(4 << 20)}
		s.HeapScan = r.Uint64N(s.Live + 1)
		o := Options{Percent: 1 + r.IntN(400), MinHeadroom: r.Int64N(256 << 20)}
		p := GCPercent(s, o)
		base := s.Live + s.StackScan + s.GlobalsScan
		room := Headroom(s, o)
		goal := base * uint64(p) / 100
		switch {
		case p < 1 || p > o.Percent:
			t.Fatalf("%+v %+v: percent %d outside [1, %d]", s, o, p, o.Percent)
		case p == o.Percent:
			if room < goal-base/100 && base > 0 {
				t.Fatalf("%+v %+v: clamped to %d though headroom %d is below its goal %d", s, o, p, room, goal)
			}
		case p == 1:
			if goal > room+base/100 {
				t.Fatalf("%+v %+v: percent 1 gives %d, headroom %d", s, o, goal, room)
			}
		default:
			if goal+base/100+1 < room || goal > room+base/100+1 {
				t.Fatalf("%+v %+v: percent %d gives headroom %d, want %d", s, o, p, goal, room)
			}
		}
	}
}

// The headroom follows the scannable memory, not the pointer-free part of
// the heap, and is never below MinHeadroom.
func TestHeadroom(t *testing.T) {
	arena := Stats{Live: 300 << 20, HeapScan: 20 << 20, StackScan: 6 << 20, GlobalsScan: 2 << 20}
	if got, want := Headroom(arena, Options{MinHeadroom: 1}), uint64(28<<20); got != want {
		t.Errorf("headroom %d, want the scannable %d", got, want)
	}
	if got, want := Headroom(arena, Options{Percent: 50, MinHeadroom: 1}), uint64(14<<20); got != want {
		t.Errorf("headroom at 50%% %d, want %d", got, want)
	}
	if got := Headroom(arena, Options{}); got != DefaultMinHeadroom {
		t.Errorf("headroom %d, want the default minimum %d", got, DefaultMinHeadroom)
	}
	// A fully scannable heap: the pacer is GOGC itself.
	plain := Stats{Live: 1 << 30, HeapScan: 1 << 30}
	if got := GCPercent(plain, Options{}); got != DefaultPercent {
		t.Errorf("fully scannable heap: percent %d, want %d", got, DefaultPercent)
	}
	if got := GCPercent(Stats{}, Options{Percent: 70}); got != 70 {
		t.Errorf("no figures yet: percent %d, want Percent", got)
	}
}

func TestStandsAside(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if why := StandsAside(getenv); why != "" {
		t.Errorf("nothing set: %q", why)
	}
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		env = map[string]string{k: "off"}
		if why := StandsAside(getenv); why == "" {
			t.Errorf("%s set: the pacer runs", k)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{Percent: -1}).Validate(); err == nil {
		t.Error("negative percent accepted")
	}
	if err := (Options{MinHeadroom: -1}).Validate(); err == nil {
		t.Error("negative headroom accepted")
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// readRuntime reads runtime/metrics values by name.
func readRuntime(names ...string) []uint64 {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	out := make([]uint64, len(names))
	for i := range s {
		out[i] = s[i].Value.Uint64()
	}
	return out
}

// With a pointer-free arena held, the real runtime's goal after a
// collection is the live heap plus the headroom, not twice the arena; Stop
// gives the percent back.
func TestPacerOnTheRuntime(t *testing.T) {
	arena := make([]byte, 256<<20) // pointer-free, never touched: no RSS
	before := readRuntime("/gc/gogc:percent")[0]
	const room = 16 << 20
	p := Start(Options{MinHeadroom: room})
	deadline := time.Now().Add(10 * time.Second)
	var live, goal uint64
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine re-tunes
		runtime.GC()                      // a cycle paced by it
		v := readRuntime("/gc/heap/live:bytes", "/gc/heap/goal:bytes", "/gc/gogc:percent")
		live, goal = v[0], v[1]
		if int(v[2]) == p.Percent() && goal < live+2*room || time.Now().After(deadline) {
			break
		}
	}
	if goal >= live+2*room {
		t.Fatalf("goal %d MiB over live %d MiB: the arena still sets the pace (percent %d)", goal>>20, live>>20, p.Percent())
	}
	if goal < live+room-room/8 {
		t.Fatalf("goal %d MiB, live %d MiB: less than the %d MiB headroom", goal>>20, live>>20, room>>20)
	}
	t.Logf("arena 256 MiB: percent %d, goal %d MiB for %d MiB live", p.Percent(), goal>>20, live>>20)
	p.Stop()
	if got := readRuntime("/gc/gogc:percent")[0]; got != before {
		t.Fatalf("after Stop the percent is %d, want %d", got, before)
	}
	runtime.KeepAlive(arena)
}
