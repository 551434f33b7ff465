package deck

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are spark_deck_hints' collectors, shared by every handler of the
// process (a config's registry gets them at each provision).
type metrics struct {
	preloads prometheus.Counter
	warms    *prometheus.CounterVec
}

// newMetrics registers spark_deck_preloads_total and
// spark_deck_warms_total{result} with reg, or takes the ones already there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	preloads, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "spark_deck_preloads_total",
		Help: "Photos announced in 103 Early Hints on suggestions responses.",
	}))
	if err != nil {
		return nil, err
	}
	warms, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spark_deck_warms_total",
		Help: "Deck photo warms by result: queued, deduped, dropped (queue full); then stored, hit (already cached) or failed.",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	for _, r := range []string{warmQueued, warmDeduped, warmDropped, warmStored, warmHit, warmFailed} {
		warms.WithLabelValues(r)
	}
	return &metrics{preloads: preloads, warms: warms}, nil
}

// register registers c with reg, or returns the collector of the same
// description already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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

// announced counts n photos announced.
func (m *metrics) announced(n int) { m.preloads.Add(float64(n)) }

// warm counts a warm's result (its queueing, then its answer).
func (m *metrics) warm(result string) { m.warms.WithLabelValues(result).Inc() }
