// Package promreg registers a Caddy module's Prometheus collectors with a
// config's registry, taking the ones already there: every provision of a
// module (several handlers in a config, each reload) asks for the same
// collectors.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the collector of the same
// description already registered (when it is of c's type).
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, err
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return c, err
		}
		return existing, nil
	}
	return c, nil
}

// A Set registers a module's collectors with one registry through Register,
// one line each, and keeps the first error for Err: a constructor checks
// once, after the last one.
type Set struct {
	reg prometheus.Registerer
	err error
}

// NewSet returns a Set that registers with reg.
func NewSet(reg prometheus.Registerer) *Set { return &Set{reg: reg} }

// Counter registers (or takes) the counter name.
func (s *Set) Counter(name, help string) prometheus.Counter {
	return add(s, name, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec registers (or takes) the counter name with labels.
func (s *Set) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return add(s, name, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Histogram registers (or takes) the histogram name with buckets.
func (s *Set) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return add(s, name, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// Err returns the first registration that failed, naming its collector.
func (s *Set) Err() error { return s.err }

// add registers c, the collector name, unless a registration before
// failed; it returns the collector to use (c itself after a failure:
// usable, never nil).
func add[C prometheus.Collector](s *Set, name string, c C) C {
	if s.err != nil {
		return c
	}
	got, err := Register(s.reg, c)
	if err != nil {
		s.err = fmt.Errorf("register %s: %w", name, err)
	}
	return got
}
