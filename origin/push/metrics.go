package push

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a send, the result label of spark_push_sent_total.
const (
	ResultOK      = "ok"      // the service took it
	ResultRetry   = "retry"   // 429, 5xx or no answer: tried again later
	ResultDead    = "dead"    // the token is dead: removed from the store
	ResultError   = "error"   // refused for good (a bad request): dropped
	ResultExpired = "expired" // not delivered within MaxAge: dropped
)

// metrics are the notifier's collectors.
type metrics struct {
	sent      *prometheus.CounterVec   // spark_push_sent_total{provider,priority,result}
	dropped   *prometheus.CounterVec   // spark_push_dropped_total{reason}
	skipped   *prometheus.CounterVec   // spark_push_skipped_total{reason}
	batchSize prometheus.Histogram     // spark_push_batch_size
	delivery  *prometheus.HistogramVec // spark_push_delivery_seconds{provider,priority}
}

func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spark_push_sent_total", Help: "Push sends by provider, priority and result (ok, retry, dead, error, expired).",
		}, []string{"provider", "priority", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spark_push_dropped_total", Help: "Push notifications dropped before a send: queue_full, pending_full, expired, store.",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spark_push_skipped_total", Help: "Events not notified: read (already read), blocked, no_device, no_provider.",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spark_push_batch_size", Help: "Events per user batch.", Buckets: []float64{1, 2, 3, 5, 10, 20, 50},
		}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spark_push_delivery_seconds", Help: "Time from an event's enqueue to the push service taking its notification.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 2.5, 5, 10, 30, 60, 300},
		}, []string{"provider", "priority"}),
	}
	if reg == nil {
		return m, nil
	}
	depthGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spark_push_queue_depth", Help: "Events and deliveries waiting in the notifier (queue, batches, provider lanes).",
	}, depth)
	for _, c := range []prometheus.Collector{m.sent, m.dropped, m.skipped, m.batchSize, m.delivery, depthGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("push: register metrics: %w", err)
		}
	}
	return m, nil
}
