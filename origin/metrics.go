package origin

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PoolStat is a snapshot of one connection pool, reported by stores that have
// pools (see PoolStater).
type PoolStat struct {
	Name          string // "primary" or "replica"
	Acquired      int32
	Idle          int32
	Total         int32
	Max           int32
	AcquireCount  int64
	AcquireWaitNS int64
	Fallbacks     int64 // reads meant for this pool served by the primary (replica only)
	Behind        int64 // reads sent to the primary as the replica had not replayed their write (replica only)
	Bounded       int64 // requests whose Spark-Read-After was past the primary's position, lowered (replica only)
	LagBytes      int64 // replica replay behind the primary in WAL bytes at the last poll; -1 unknown (replica only)
}

// PoolStater is implemented by stores with connection pools.
type PoolStater interface {
	PoolStats() []PoolStat
}

// Metrics holds the origin's Prometheus collectors on its own registry.
type Metrics struct {
	Registry *prometheus.Registry
	Matching *prometheus.HistogramVec
	Swipe    prometheus.Histogram
	HTTP     *prometheus.HistogramVec
	// UploadsInFlight counts photo uploads being received or processed;
	// at PhotoOptions.MaxInFlight further uploads get 503.
	UploadsInFlight prometheus.Gauge
	// EventsPublished counts events handed to the bus.
	EventsPublished prometheus.Counter
	// EventPublishErrors counts events the bus did not take (they stay in
	// the log; edges catch up from it).
	EventPublishErrors prometheus.Counter
	// EventsPruned counts events retention deleted.
	EventsPruned prometheus.Counter
	// MessageBatchSize observes how many messages each batch stored.
	MessageBatchSize prometheus.Histogram
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// NewMetrics builds the collectors and registers them, plus Go/process
// collectors and pool gauges when ps is non-nil, on a fresh registry.
func NewMetrics(ps PoolStater) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Matching: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spark_matching_duration_seconds", Help: "Time to compute match suggestions.", Buckets: latencyBuckets,
		}, []string{"store"}),
		Swipe: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spark_swipe_response_seconds", Help: "Time to record a swipe, including match creation.", Buckets: latencyBuckets,
		}),
		HTTP: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spark_origin_http_request_duration_seconds", Help: "Origin HTTP latency by route.", Buckets: latencyBuckets,
		}, []string{"route", "method", "code"}),
		UploadsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spark_origin_photo_uploads_in_flight", Help: "Photo uploads being received or processed.",
		}),
		EventsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_origin_events_published_total", Help: "Events handed to the realtime bus.",
		}),
		EventPublishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_origin_event_publish_errors_total", Help: "Events the realtime bus did not take (they stay in the event log).",
		}),
		EventsPruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_origin_events_pruned_total", Help: "Events deleted by retention.",
		}),
		MessageBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spark_origin_message_batch_size", Help: "Messages stored per batch (one transaction).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
	}
	m.Registry.MustRegister(m.Matching, m.Swipe, m.HTTP, m.UploadsInFlight,
		m.EventsPublished, m.EventPublishErrors, m.EventsPruned, m.MessageBatchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if ps != nil {
		m.Registry.MustRegister(&poolCollector{ps: ps})
	}
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

var (
	poolConnsDesc = prometheus.NewDesc("spark_origin_db_pool_connections", "Database pool connections by state.",
		[]string{"pool", "state"}, nil)
	poolMaxDesc = prometheus.NewDesc("spark_origin_db_pool_max_connections", "Configured maximum pool size.",
		[]string{"pool"}, nil)
	poolAcqDesc = prometheus.NewDesc("spark_origin_db_pool_acquires_total", "Connections acquired from the pool.",
		[]string{"pool"}, nil)
	replicaFallbackDesc = prometheus.NewDesc("spark_origin_db_replica_fallbacks_total",
		"Reads meant for the replica that could not reach it and were served by the primary.", nil, nil)
	replicaBehindDesc = prometheus.NewDesc("spark_origin_db_replica_behind_reads_total",
		"Reads meant for the replica that were served by the primary because the replica had not yet replayed a write they must see (read your writes).", nil, nil)
	replicaBoundedDesc = prometheus.NewDesc("spark_origin_db_replica_read_after_bounded_total",
		"Requests whose Spark-Read-After named a WAL position the primary had not reached (forged or from another database); it was lowered to the primary's position.", nil, nil)
	replicaLagDesc = prometheus.NewDesc("spark_origin_db_replica_lag_bytes",
		"How far the replica's replay trailed the primary's WAL insert position at the last poll (every 50 ms), in bytes; absent while either cannot be read.", nil, nil)
	poolWaitDesc = prometheus.NewDesc("spark_origin_db_pool_acquire_wait_seconds_total", "Time spent waiting for a pool connection.",
		[]string{"pool"}, nil)
)

type poolCollector struct{ ps PoolStater }

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConnsDesc
	ch <- poolMaxDesc
	ch <- poolAcqDesc
	ch <- poolWaitDesc
	ch <- replicaFallbackDesc
	ch <- replicaBehindDesc
	ch <- replicaBoundedDesc
	ch <- replicaLagDesc
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.ps.PoolStats() {
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.Acquired), s.Name, "acquired")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.Idle), s.Name, "idle")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.Total), s.Name, "total")
		ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(s.Max), s.Name)
		ch <- prometheus.MustNewConstMetric(poolAcqDesc, prometheus.CounterValue, float64(s.AcquireCount), s.Name)
		ch <- prometheus.MustNewConstMetric(poolWaitDesc, prometheus.CounterValue, float64(s.AcquireWaitNS)/1e9, s.Name)
		if s.Name == "replica" {
			ch <- prometheus.MustNewConstMetric(replicaFallbackDesc, prometheus.CounterValue, float64(s.Fallbacks))
			ch <- prometheus.MustNewConstMetric(replicaBehindDesc, prometheus.CounterValue, float64(s.Behind))
			ch <- prometheus.MustNewConstMetric(replicaBoundedDesc, prometheus.CounterValue, float64(s.Bounded))
			if s.LagBytes >= 0 {
				ch <- prometheus.MustNewConstMetric(replicaLagDesc, prometheus.GaugeValue, float64(s.LagBytes))
			}
		}
	}
}
