package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/caddymodule/internal/promreg"
	"github.com/spark-edge/spark/internal/authtoken"
)

// Results counted by spark_auth_requests_total.
const (
	resultAccepted  = "accepted"
	resultRefused   = "refused"
	resultPreflight = "preflight"
)

// metrics are spark_auth's Prometheus collectors, with the hot-path
// counters resolved once.
type metrics struct {
	requests  *prometheus.CounterVec
	accepted  prometheus.Counter
	preflight prometheus.Counter
	byReason  map[authtoken.Reason]prometheus.Counter
	other     prometheus.Counter // an error without a reason (none today)
}

// newMetrics registers spark_auth_requests_total{result,reason} with reg,
// or takes the one already there (several spark_auth handlers in a config
// share it).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spark_auth_requests_total",
		Help: "Requests spark_auth handled: accepted (a token verified), preflight (CORS, passed unauthenticated) or refused (401), with the reason of a refusal.",
	}, []string{"result", "reason"}))
	if err != nil {
		return nil, err
	}
	reasons := authtoken.Reasons()
	m := &metrics{
		requests:  requests,
		accepted:  requests.WithLabelValues(resultAccepted, ""),
		preflight: requests.WithLabelValues(resultPreflight, ""),
		byReason:  make(map[authtoken.Reason]prometheus.Counter, len(reasons)),
		other:     requests.WithLabelValues(resultRefused, "other"),
	}
	for _, r := range reasons {
		m.byReason[r] = requests.WithLabelValues(resultRefused, string(r))
	}
	return m, nil
}

// refused returns the counter of refusals for reason.
func (m *metrics) refused(reason authtoken.Reason) prometheus.Counter {
	if c, ok := m.byReason[reason]; ok {
		return c
	}
	return m.other
}
