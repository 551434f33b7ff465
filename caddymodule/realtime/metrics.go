package realtime

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// frameKind is a frame type as spark_websocket_frames_total labels it.
type frameKind uint8

const (
	kindInSend frameKind = iota
	kindInRead
	kindInTyping
	kindInAck
	kindInInvalid // not decodable, unknown type, binary, refused by the rate limit
	kindOutEvent
	kindOutSent
	kindOutTyping
	kindOutError
	kindOutResync
	numFrameKinds
)

// frameLabels are each kind's direction and type labels.
var frameLabels = [numFrameKinds][2]string{
	kindInSend: {"in", typeSend}, kindInRead: {"in", typeRead}, kindInTyping: {"in", typeTyping},
	kindInAck: {"in", typeAck}, kindInInvalid: {"in", "invalid"},
	kindOutEvent: {"out", typeEvent}, kindOutSent: {"out", typeSent}, kindOutTyping: {"out", typeTyping},
	kindOutError: {"out", typeError}, kindOutResync: {"out", typeResync},
}

// inKinds maps a decoded client frame's type to its kind.
var inKinds = map[string]frameKind{typeSend: kindInSend, typeRead: kindInRead, typeTyping: kindInTyping, typeAck: kindInAck}

// closeCodes are the codes spark_websocket_closes_total labels by number;
// any other code a client sends counts as "other".
var closeCodes = []int{closeNormal, closeGoingAway, 1002, 1003, closeNoStatus, closeAbnormal, closeInvalidUTF8,
	closePolicy, closeTooBig, closeInternal, closeTryAgainLater, closeTokenExpired, closeTokenRefused}

// metrics are spark_realtime's collectors, shared by every hub of the
// process (a Caddy config's registry gets them at each provision), with
// the hot-path children resolved once.
type metrics struct {
	collectors []prometheus.Collector

	active        prometheus.Gauge
	delivery      prometheus.Histogram
	frames        [numFrameKinds]prometheus.Counter
	slowConsumers prometheus.Counter
	resumes       prometheus.Counter
	replayed      prometheus.Counter
	closes        map[int]prometheus.Counter
	closesOther   prometheus.Counter
	refusals      *prometheus.CounterVec
}

func newMetrics() *metrics {
	framesVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spark_websocket_frames_total",
		Help: "WebSocket frames spark_realtime handled, by direction (in, out) and type (in: send, read, typing, ack, invalid; out: event, sent, typing, error, resync).",
	}, []string{"direction", "type"})
	closesVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spark_websocket_closes_total",
		Help: "WebSocket connections ended, by close code (the server's when it closed, the client's otherwise; 1006: no close frame).",
	}, []string{"code"})
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spark_websocket_connections_active",
			Help: "Open spark_realtime WebSocket connections.",
		}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spark_message_delivery_duration_seconds",
			Help:    "From an event's commit at the origin to its frame written to a WebSocket at the edge.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_websocket_slow_consumer_disconnects_total",
			Help: "Connections closed with 1013 because their queue was full.",
		}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_websocket_resumes_total",
			Help: "Connections opened with since=N (a resume).",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spark_websocket_replayed_events_total",
			Help: "Events delivered from the origin's log (resumes, gaps, catch-up after a bus reconnect) rather than live from the bus.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spark_websocket_admissions_refused_total",
			Help: "Connections refused with 503 and Retry-After before the upgrade, by cause (origin: failed, overloaded or no answer within admission_timeout; bus: unavailable).",
		}, []string{"cause"}),
		closes:      make(map[int]prometheus.Counter, len(closeCodes)),
		closesOther: closesVec.WithLabelValues("other"),
	}
	for k, l := range frameLabels {
		m.frames[k] = framesVec.WithLabelValues(l[0], l[1])
	}
	for _, c := range closeCodes {
		m.closes[c] = closesVec.WithLabelValues(strconv.Itoa(c))
	}
	m.collectors = []prometheus.Collector{m.active, m.delivery, framesVec, m.slowConsumers, m.resumes, m.replayed, closesVec, m.refusals}
	return m
}

// register adds the collectors to a config's registry; the same ones
// already there (a second spark_realtime handler) are fine.
func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) || are.ExistingCollector != c {
				return err
			}
		}
	}
	return nil
}

// closed counts a connection's end with code.
func (m *metrics) closed(code int) {
	if c, ok := m.closes[code]; ok {
		c.Inc()
		return
	}
	m.closesOther.Inc()
}

// refused counts a connection refused before its upgrade.
func (m *metrics) refused(cause string) { m.refusals.WithLabelValues(cause).Inc() }

// delivered observes an event frame written at now.
func (m *metrics) delivered(at, now time.Time) {
	if !at.IsZero() {
		m.delivery.Observe(now.Sub(at).Seconds())
	}
}

// Destruct implements caddy.Destructor (the metrics live in a UsagePool):
// nothing to release.
func (m *metrics) Destruct() error { return nil }
