package cache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/tiered"
)

// Results counted by spark_cache_requests_total.
const (
	resultHit          = "hit"
	resultStale        = "stale"
	resultStaleIfError = "stale_if_error"
	resultRevalidated  = "revalidated"
	resultMiss         = "miss"
	resultBypass       = "bypass"
)

// metrics are the cache's Prometheus collectors. They live as long as the
// cache's pooled state, so counters survive config reloads.
type metrics struct {
	requests *prometheus.CounterVec
	origin   prometheus.Histogram
	purges   prometheus.Counter
	entries  prometheus.GaugeFunc
	bytes    prometheus.GaugeFunc

	// Hot-path counters resolved once.
	l1Hit, l1Stale, l1SIE, l1Reval, miss, bypass prometheus.Counter
}

func newMetrics(store *tiered.Cache, name string) *metrics {
	constLabels := prometheus.Labels{"cache": name}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spark_cache_requests_total", Help: "Requests the response cache handled, by the layer that answered and the result.",
			ConstLabels: constLabels,
		}, []string{"layer", "result"}),
		origin: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spark_cache_origin_fetch_seconds", Help: "Time to the end of an origin response fetched by the cache.",
			ConstLabels: constLabels,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		purges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_cache_purged_entries_total", Help: "Entries removed by purges and invalidations.", ConstLabels: constLabels,
		}),
		entries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spark_cache_entries", Help: "Entries in the L1 cache (responses and Vary records).", ConstLabels: constLabels,
		}, func() float64 { return float64(store.Stats().Entries) }),
		bytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spark_cache_bytes", Help: "Bytes held by the L1 cache's queues.", ConstLabels: constLabels,
		}, func() float64 { return float64(store.Stats().Bytes) }),
	}
	m.l1Hit = m.requests.WithLabelValues("l1", resultHit)
	m.l1Stale = m.requests.WithLabelValues("l1", resultStale)
	m.l1SIE = m.requests.WithLabelValues("l1", resultStaleIfError)
	m.l1Reval = m.requests.WithLabelValues("l1", resultRevalidated)
	m.miss = m.requests.WithLabelValues("origin", resultMiss)
	m.bypass = m.requests.WithLabelValues("origin", resultBypass)
	return m
}

// register adds the collectors to reg, tolerating ones already there (two
// handlers sharing one cache in a config).
func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.origin, m.purges, m.entries, m.bytes} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				return err
			}
		}
	}
	return nil
}

func (m *metrics) hit(layer tiered.Layer, result string) {
	if layer == tiered.LayerL1 {
		switch result {
		case resultHit:
			m.l1Hit.Inc()
			return
		case resultStale:
			m.l1Stale.Inc()
			return
		case resultStaleIfError:
			m.l1SIE.Inc()
			return
		case resultRevalidated:
			m.l1Reval.Inc()
			return
		}
	}
	m.requests.WithLabelValues(string(layer), result).Inc()
}

func (m *metrics) request(result string) {
	switch result {
	case resultMiss:
		m.miss.Inc()
	case resultBypass:
		m.bypass.Inc()
	default:
		m.requests.WithLabelValues("origin", result).Inc()
	}
}

func (m *metrics) originFetch(d time.Duration) { m.origin.Observe(d.Seconds()) }

func (m *metrics) purged(n int) { m.purges.Add(float64(n)) }
