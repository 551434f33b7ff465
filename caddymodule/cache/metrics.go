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
	// resultDenied: a stored response refused the viewer (deny list) and
	// the request went to the origin.
	resultDenied = "denied"
)

// metrics are the cache's Prometheus collectors. They live as long as the
// cache's pooled state, so counters survive config reloads.
type metrics struct {
	requests *prometheus.CounterVec
	origin   prometheus.Histogram
	purges   prometheus.Counter
	// fastPath counts the hits the listener fast path answered (each is
	// counted in requests as an L1 hit too).
	fastPath prometheus.Counter
	// refreshes counts the fetches a write's Spark-Refresh started.
	refreshes prometheus.Counter
	// readBehind counts fills fetched again because their data was read
	// from a replica behind a purge of their tags (Spark-Read-At).
	readBehind prometheus.Counter
	entries    prometheus.GaugeFunc
	bytes      prometheus.GaugeFunc
	// L2 and cross-edge purge figures, read from the store.
	l2 []prometheus.Collector

	// Hot-path counters resolved once.
	l1Hit, l1Stale, l1SIE, l1Reval, l2Hit, miss, bypass prometheus.Counter
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
		fastPath: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_cache_fastpath_responses_total", Help: "L1 hits the listener fast path (spark_fastpath) answered before Caddy's pipeline.", ConstLabels: constLabels,
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_cache_write_refreshes_total", Help: "Fetches of a writer's own answers a write's Spark-Refresh named, made after its purge.", ConstLabels: constLabels,
		}),
		readBehind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_cache_read_behind_refetches_total", Help: "Fills fetched again (with Spark-Read-After) because the origin read them from a replica that had not replayed a purge of their tags.", ConstLabels: constLabels,
		}),
		entries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spark_cache_entries", Help: "Entries in the L1 cache (responses and Vary records).", ConstLabels: constLabels,
		}, func() float64 { return float64(store.Stats().Entries) }),
		bytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spark_cache_bytes", Help: "Bytes held by the L1 cache's queues.", ConstLabels: constLabels,
		}, func() float64 { return float64(store.Stats().Bytes) }),
	}
	if store.HasL2() {
		counter := func(name, help string, f func(tiered.Stats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels},
				func() float64 { return float64(f(store.Stats())) })
		}
		m.l2 = []prometheus.Collector{
			counter("spark_cache_l2_errors_total", "Failed Redis operations (each served from L1 or the origin instead).", func(s tiered.Stats) uint64 { return s.L2Errors }),
			counter("spark_cache_l2_breaker_opens_total", "Times Redis was declared down and the edge went L1-only.", func(s tiered.Stats) uint64 { return s.BreakerOpens }),
			counter("spark_cache_purges_sent_total", "Purges published to the other edges.", func(s tiered.Stats) uint64 { return s.PurgesSent }),
			counter("spark_cache_purges_received_total", "Purges received from the other edges.", func(s tiered.Stats) uint64 { return s.PurgesReceived }),
			counter("spark_cache_l1_resets_total", "Times L1 was dropped because purges may have been missed.", func(s tiered.Stats) uint64 { return s.L1Resets }),
			counter("spark_cache_purges_deferred_total", "Purges whose Redis part failed and went to the background retrier.", func(s tiered.Stats) uint64 { return s.PurgesDeferred }),
			counter("spark_cache_purge_overflows_total", "Times more purges waited for Redis than are remembered, so every Redis entry under the prefix was dropped instead.", func(s tiered.Stats) uint64 { return s.PurgeOverflows }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spark_cache_purges_pending", Help: "Purges that have not reached Redis yet (retried in the background).", ConstLabels: constLabels},
				func() float64 { return float64(store.Stats().PurgesPending) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spark_cache_l2_up", Help: "1 while Redis is in use, 0 while the breaker is open.", ConstLabels: constLabels},
				func() float64 {
					if store.Stats().L2Down {
						return 0
					}
					return 1
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spark_cache_purge_channel_up", Help: "1 while the edge hears the other edges' purges, 0 while its subscription is down (L1 answers, Redis does not; L1 is dropped when it is back).", ConstLabels: constLabels},
				func() float64 {
					if store.Stats().PurgeChannelDown {
						return 0
					}
					return 1
				}),
		}
	}
	m.l1Hit = m.requests.WithLabelValues("l1", resultHit)
	m.l2Hit = m.requests.WithLabelValues("l2", resultHit)
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
	for _, c := range append([]prometheus.Collector{m.requests, m.origin, m.purges, m.fastPath, m.refreshes, m.readBehind, m.entries, m.bytes}, m.l2...) {
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
	if layer == tiered.LayerL2 && result == resultHit {
		m.l2Hit.Inc()
		return
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

// refreshAfterWrite counts one fetch a write's Spark-Refresh started.
func (m *metrics) refreshAfterWrite() { m.refreshes.Inc() }

// readBehindRefetch counts one fill fetched again after a purge it predated.
func (m *metrics) readBehindRefetch() { m.readBehind.Inc() }
