package batch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/caddymodule/internal/promreg"
)

// Results of spark_batch_batches_total.
const (
	resultServed   = "served"   // decoded and run (whatever its sub-responses)
	resultRejected = "rejected" // refused as a whole (400, 405, 413, 415, 422), nothing run
)

// Results of spark_batch_subrequests_total.
const (
	subSuccess     = "success"      // 1xx-3xx
	subClientError = "client_error" // 4xx
	subServerError = "server_error" // 5xx from the route
	subDeadline    = "deadline"     // not answered, or not started, by the deadline
	subTooLarge    = "too_large"    // response body over max_response_size
	subPanic       = "panic"        // the route panicked
)

// sizeBuckets are the batch size histogram's buckets (sub-requests).
var sizeBuckets = []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50, 100}

// metrics are spark_batch's collectors, shared by every spark_batch
// handler of the process (a config's registry gets them at each
// provision), with the children resolved once.
type metrics struct {
	batches *prometheus.CounterVec
	subs    *prometheus.CounterVec
	size    prometheus.Histogram

	served, rejected prometheus.Counter
	bySub            map[string]prometheus.Counter
}

// newMetrics registers spark_batch_batches_total{result},
// spark_batch_subrequests_total{result} and spark_batch_size with reg, or
// takes the ones already there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	set := promreg.NewSet(reg)
	batches := set.CounterVec("spark_batch_batches_total",
		"Batches spark_batch answered: served (run) or rejected (bad input, nothing run).", "result")
	subs := set.CounterVec("spark_batch_subrequests_total",
		"Sub-requests of served batches by result: success (1xx-3xx), client_error (4xx), server_error (5xx), deadline, too_large, panic.", "result")
	size := set.Histogram("spark_batch_size", "Sub-requests per served batch.", sizeBuckets)
	if err := set.Err(); err != nil {
		return nil, err
	}
	m := &metrics{batches: batches, subs: subs, size: size,
		served: batches.WithLabelValues(resultServed), rejected: batches.WithLabelValues(resultRejected),
		bySub: make(map[string]prometheus.Counter)}
	for _, r := range []string{subSuccess, subClientError, subServerError, subDeadline, subTooLarge, subPanic} {
		m.bySub[r] = subs.WithLabelValues(r)
	}
	return m, nil
}

// sub counts one sub-request's result.
func (m *metrics) sub(result string) {
	if m == nil {
		return
	}
	m.bySub[result].Inc()
}

// batchServed counts a batch of n sub-requests that ran.
func (m *metrics) batchServed(n int) {
	if m == nil {
		return
	}
	m.served.Inc()
	m.size.Observe(float64(n))
}

// batchRejected counts a batch refused as a whole.
func (m *metrics) batchRejected() {
	if m == nil {
		return
	}
	m.rejected.Inc()
}

// statusResult is the result label of a sub-response status.
func statusResult(status int) string {
	switch {
	case status >= 500:
		return subServerError
	case status >= 400:
		return subClientError
	default:
		return subSuccess
	}
}
