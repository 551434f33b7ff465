package deck

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/caddymodule/internal/promreg"
)

// metrics are spark_deck_hints' collectors, shared by every handler of the
// process (a config's registry gets them at each provision).
type metrics struct {
	preloads    prometheus.Counter
	warms       *prometheus.CounterVec
	viewerWarms *prometheus.CounterVec
}

// newMetrics registers spark_deck_preloads_total,
// spark_deck_warms_total{result} and
// spark_deck_viewer_warms_total{kind,result} with reg, or takes the ones
// already there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	set := promreg.NewSet(reg)
	preloads := set.Counter("spark_deck_preloads_total", "Photos announced in 103 Early Hints on suggestions responses.")
	warms := set.CounterVec("spark_deck_warms_total",
		"Deck photo warms by result: queued, deduped, dropped (queue full); then stored, hit (already cached) or failed.", "result")
	viewerWarms := set.CounterVec("spark_deck_viewer_warms_total",
		"Warms made as the deck's viewer, by kind (profile: a card's profile; page: the deck's next page) and result: "+
			"queued, deduped, dropped (queue full); then stored, hit (already cached), uncached (answered but not "+
			"storable, e.g. private) or failed.", "kind", "result")
	if err := set.Err(); err != nil {
		return nil, err
	}
	for _, r := range []string{warmQueued, warmDeduped, warmDropped, warmStored, warmHit, warmFailed} {
		warms.WithLabelValues(r)
	}
	for _, k := range []string{warmProfile, warmPage} {
		for _, r := range []string{warmQueued, warmDeduped, warmDropped, warmStored, warmHit, warmUncached, warmFailed} {
			viewerWarms.WithLabelValues(k, r)
		}
	}
	return &metrics{preloads: preloads, warms: warms, viewerWarms: viewerWarms}, nil
}

// announced counts n photos announced.
func (m *metrics) announced(n int) { m.preloads.Add(float64(n)) }

// warm counts a warm's result (its queueing, then its answer).
func (m *metrics) warm(result string) { m.warms.WithLabelValues(result).Inc() }

// Kinds of spark_deck_viewer_warms_total.
const (
	warmProfile = "profile"
	warmPage    = "page"
)

// viewerWarm returns the counter of a kind of viewer warm's results.
func (m *metrics) viewerWarm(kind string) func(result string) {
	return func(result string) { m.viewerWarms.WithLabelValues(kind, result).Inc() }
}
