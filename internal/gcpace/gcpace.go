// Package gcpace paces Go's garbage collector by the heap a collection
// scans instead of the whole live heap.
//
// GOGC puts the next collection at live × (1 + GOGC/100). In a process whose
// live heap is mostly a pointer-free arena held for good (the edge's L1
// cache: bigcache's byte arrays, 256 MiB by default), that lets garbage grow
// by as much as the arena before anything is collected, although collecting
// would cost little: pointer-free memory is not scanned. The pacer sets the
// GC percent after every collection so that the next one comes after
// GOGC% of the scannable memory (heap, stacks, globals) has been allocated,
// and never after less than a minimum headroom. A collection then costs per
// allocated byte what it costs at GOGC in a fully scannable heap, and the
// process's memory is the arena, the live heap and that headroom.
//
// The pacer only ever lowers the percent below Options.Percent: it never
// lets the heap grow further than GOGC=Percent would.
package gcpace

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Defaults of Options.
const (
	DefaultPercent     = 100
	DefaultMinHeadroom = 128 << 20
)

// Options are the pacer's settings.
type Options struct {
	// Percent is GOGC applied to the scannable memory (0: 100).
	Percent int
	// MinHeadroom is the least allocation between two collections, in
	// bytes (0: 128 MiB): it bounds how often a small scannable heap is
	// collected.
	MinHeadroom int64
}

// WithDefaults returns o with its zero fields set to the defaults.
func (o Options) WithDefaults() Options {
	if o.Percent == 0 {
		o.Percent = DefaultPercent
	}
	if o.MinHeadroom == 0 {
		o.MinHeadroom = DefaultMinHeadroom
	}
	return o
}

// Validate reports settings the pacer cannot use.
func (o Options) Validate() error {
	if o.Percent < 0 {
		return fmt.Errorf("gcpace: percent %d is negative", o.Percent)
	}
	if o.MinHeadroom < 0 {
		return fmt.Errorf("gcpace: min_headroom %d is negative", o.MinHeadroom)
	}
	return nil
}

// Stats are the runtime's figures of the last collection.
type Stats struct {
	Live        uint64 // heap marked live (/gc/heap/live:bytes)
	HeapScan    uint64 // its scannable part (/gc/scan/heap:bytes)
	StackScan   uint64 // goroutine stacks (/gc/scan/stack:bytes)
	GlobalsScan uint64 // globals (/gc/scan/globals:bytes)
}

// Headroom returns what may be allocated before the next collection:
// Percent% of the scannable memory, at least MinHeadroom.
func Headroom(s Stats, o Options) uint64 {
	o = o.WithDefaults()
	scan := s.HeapScan + s.StackScan + s.GlobalsScan
	return max(scan*uint64(o.Percent)/100, uint64(o.MinHeadroom))
}

// GCPercent returns the GC percent that puts the runtime's next heap goal
// at Live + Headroom (the runtime's goal is Live + (Live + StackScan +
// GlobalsScan) × percent/100), within [1, Percent].
func GCPercent(s Stats, o Options) int {
	o = o.WithDefaults()
	base := s.Live + s.StackScan + s.GlobalsScan
	if base == 0 {
		return o.Percent
	}
	p := math.Ceil(float64(Headroom(s, o)) * 100 / float64(base))
	return int(max(1, min(p, float64(o.Percent))))
}

// StandsAside reports why the pacer must not run, given the process's
// environment: the operator chose GOGC or GOMEMLIMIT. "" when it may.
func StandsAside(getenv func(string) string) string {
	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		if getenv(v) != "" {
			return v + " is set"
		}
	}
	return ""
}

// runtimeMetrics are the runtime/metrics names of Stats' fields, in order.
var runtimeMetrics = [...]string{"/gc/heap/live:bytes", "/gc/scan/heap:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Pacer re-tunes the GC percent after every collection.
type Pacer struct {
	mu      sync.Mutex
	opts    Options
	stopped bool
	prev    int // the percent before Start, restored by Stop
	percent int // the percent set last
	samples []metrics.Sample
}

// sentinel is an object whose finalizer runs after each collection that
// found it unreachable; it re-arms itself with a new one. It holds a
// pointer so that it is never a tiny allocation (whose finalizers may not
// run).
type sentinel struct{ p *Pacer }

// Start sets the percent for the current heap and re-tunes it after every
// collection until Stop.
func Start(o Options) *Pacer {
	p := &Pacer{opts: o.WithDefaults(), samples: make([]metrics.Sample, len(runtimeMetrics))}
	for i, name := range runtimeMetrics {
		p.samples[i].Name = name
	}
	p.mu.Lock()
	p.prev = debug.SetGCPercent(p.opts.Percent)
	p.mu.Unlock()
	p.tune()
	p.arm()
	return p
}

// SetOptions changes the settings (a config reload); they apply at once.
func (p *Pacer) SetOptions(o Options) {
	p.mu.Lock()
	p.opts = o.WithDefaults()
	p.mu.Unlock()
	p.tune()
}

// Percent returns the GC percent the pacer set last.
func (p *Pacer) Percent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.percent
}

// Stop ends the pacing and restores the percent from before Start.
func (p *Pacer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		debug.SetGCPercent(p.prev)
	}
}

func (p *Pacer) arm() {
	runtime.SetFinalizer(&sentinel{p: p}, func(s *sentinel) {
		if s.p.tune() {
			s.p.arm()
		}
	})
}

// tune sets the percent for the last collection's figures; it reports
// false once the pacer is stopped.
func (p *Pacer) tune() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	metrics.Read(p.samples)
	var s Stats
	for i, f := range []*uint64{&s.Live, &s.HeapScan, &s.StackScan, &s.GlobalsScan} {
		if p.samples[i].Value.Kind() == metrics.KindUint64 {
			*f = p.samples[i].Value.Uint64()
		}
	}
	if pc := GCPercent(s, p.opts); pc != p.percent {
		debug.SetGCPercent(pc)
		p.percent = pc
	}
	return true
}
