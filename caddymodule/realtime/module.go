// Package realtime is the Caddy module http.handlers.spark_realtime: the
// edge's end of Spark's realtime chat. It terminates the app's WebSocket
// (GET /api/realtime, subprotocol spark.v1), delivers each user's durable
// events (messages, matches, read receipts, unmatches) in order and never
// twice, resuming from the origin's event log after any disconnect, and
// passes the user's sends and read receipts to the origin's API and typing
// indicators to the peer through the event bus.
//
// This file is the Caddy surface; the protocol is in protocol.go, a
// connection in conn.go (reader, writer, queue), delivery in delivery.go,
// the hub (connections by user, bus subscriptions) in hub.go, the origin's
// API in origin.go (sends coalesced in sendbatch.go; the purges its answers
// name applied to the config's spark_cache stores in purge.go), the upgrade in handler.go, the bus sources in
// events.go, the Caddyfile in caddyfile.go and metrics in metrics.go.
package realtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/tagpurge"
	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/authtoken"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// pool holds what outlives a config: the hubs (by name and bus) and the
// metrics. A reload's new handlers find them there before the old ones
// let go.
var pool = caddy.NewUsagePool()

// metricsKey is the metrics' key in pool.
const metricsKey = "spark_realtime.metrics"

// Defaults of the options.
const (
	defaultName            = "default"
	defaultQueueFrames     = 1000
	defaultQueueBytes      = 1 << 20
	defaultPingInterval    = 25 * time.Second
	defaultPongTimeout     = 10 * time.Second
	defaultWriteTimeout    = 5 * time.Second
	defaultMaxFrame        = 64 << 10
	defaultRate            = 20
	defaultBurst           = 40
	defaultOriginTimeout   = 10 * time.Second
	defaultAdmission       = 10 * time.Second
	defaultInFlight        = 8
	defaultInFlightPerEdge = 512
)

// Handler is the spark_realtime HTTP handler.
type Handler struct {
	// Config is the token verification, as spark_auth's (its fields appear
	// at the top level of the JSON): the same keys, issuer, audience,
	// lifetime and leeway as the origin's.
	tokenconf.Config

	// Name names the hub this handler's connections live in (default
	// "default"). Handlers with the same name and events share one hub: a
	// reload keeps its connections open.
	Name string `json:"name,omitempty"`
	// Origin is the origin API's base URL (http://127.0.0.1:8081): sends,
	// read receipts, the conversation list and the event log are asked of
	// it with the user's token.
	Origin string `json:"origin"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may open a connection; "*" allows any. A request without Origin (not
	// a browser) is always allowed, and so is one whose Origin names the
	// request's own host.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// EventsRaw is the event bus the edge subscribes to for its connected
	// users: a module of the spark.realtime.events namespace, chosen by
	// "source" (origin: the origin's own stream; redis: Redis pub/sub).
	// Changing it makes a new hub: connections of the old one close with
	// 1001 when the old config goes, and clients reconnect.
	EventsRaw json.RawMessage `json:"events,omitempty" caddy:"namespace=spark.realtime.events inline_key=source"`
	// QueueFrames bounds a connection's outbound queue in frames (default
	// 1000); QueueBytes in bytes (default 1 MiB). A client whose queue is
	// full is disconnected with 1013 and resumes from its last ack.
	QueueFrames int   `json:"queue_frames,omitempty"`
	QueueBytes  int64 `json:"queue_bytes,omitempty"`
	// PingInterval is how often the server pings (default 25s);
	// PongTimeout how long after a ping's due time a silent client is
	// dropped (default 10s).
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	PongTimeout  caddy.Duration `json:"pong_timeout,omitempty"`
	// WriteTimeout bounds writing one message (default 5s): a client that
	// takes longer is dropped.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// MaxFrame is the largest client message in bytes (default 64 KiB);
	// a larger one closes the connection with 1009.
	MaxFrame int64 `json:"max_frame,omitempty"`
	// Rate is the inbound frames per second a connection may send (default
	// 20), Burst how many at once (default 40). Excess frames get error
	// frames; a client that keeps on is closed with 1008.
	Rate  float64 `json:"rate,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// OriginTimeout bounds each call to the origin (default 10s).
	OriginTimeout caddy.Duration `json:"origin_timeout,omitempty"`
	// AdmissionTimeout bounds what a connection needs before its upgrade
	// (default 10s, as origin_timeout): the bus subscription and the origin's answers (its
	// conversations, and the log's end or a resume's first page), waiting
	// for an origin call slot included. Past it the client is refused with
	// 503 and a Retry-After instead of being held while the origin is
	// overloaded.
	AdmissionTimeout caddy.Duration `json:"admission_timeout,omitempty"`
	// InFlight bounds a connection's concurrent origin calls (default 8);
	// InFlightPerEdge those of all connections (default 512).
	InFlight        int `json:"in_flight,omitempty"`
	InFlightPerEdge int `json:"in_flight_per_edge,omitempty"`

	verifier *authtoken.Verifier
	// retired is set at Cleanup: a newer config runs (or none). A
	// pointer: Handler is copied by value (CaddyModule).
	retired *atomic.Bool
	origins originPolicy
	cfg     *connConfig
	hub     *hub
	hubKey  string
	metrics *metrics
	logger  *zap.Logger
}

// EventSource is a spark.realtime.events module: it opens the bus a hub
// receives its users' events from. Open is called once per hub, not per
// config; the bus lives until the hub stops.
type EventSource interface {
	// Open connects to the bus; messages of subscribed users go to h.
	Open(h eventbus.Handler, logger *zap.Logger) (Bus, error)
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_realtime",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the verifier and the origin client, and joins (or
// starts) the hub.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.retired = new(atomic.Bool)
	h.fillDefaults()
	repl := caddy.NewReplacer()
	v, err := h.Verifier(repl, h.logger, "spark_realtime")
	if err != nil {
		return err
	}
	h.verifier = v
	originURL, err := checkOriginURL(repl.ReplaceKnown(h.Origin, ""))
	if err != nil {
		return fmt.Errorf("spark_realtime: origin: %w", err)
	}
	if h.origins, err = newOriginPolicy(h.AllowedOrigins); err != nil {
		return fmt.Errorf("spark_realtime: allowed_origins: %w", err)
	}
	h.cfg = &connConfig{
		queueFrames: h.QueueFrames, queueBytes: int(h.QueueBytes),
		pingInterval: time.Duration(h.PingInterval), pongTimeout: time.Duration(h.PongTimeout),
		writeTimeout: time.Duration(h.WriteTimeout), maxFrame: h.MaxFrame,
		rate: h.Rate, burst: float64(h.Burst), maxInFlight: h.InFlight, admission: time.Duration(h.AdmissionTimeout),
		origin: newOriginClient(originURL, time.Duration(h.OriginTimeout), h.InFlightPerEdge),
		logger: h.logger,
	}
	purger, err := tagpurge.Load(ctx)
	if err != nil {
		return fmt.Errorf("spark_realtime: %w", err)
	}
	h.cfg.origin.purges = cachePurges{purger: purger, timeout: time.Duration(h.OriginTimeout), logger: h.logger}

	m, _, err := pool.LoadOrNew(metricsKey, func() (caddy.Destructor, error) { return newMetrics(), nil })
	if err != nil {
		return err
	}
	h.metrics = m.(*metrics)
	if err := h.metrics.register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("spark_realtime: register metrics: %w", err)
	}

	if len(h.EventsRaw) == 0 {
		return errors.New("spark_realtime: events is required: origin <token> or redis <address…>")
	}
	sum := sha256.Sum256(h.EventsRaw)
	h.hubKey = "spark_realtime.hub." + h.Name + "." + hex.EncodeToString(sum[:8])
	mod, err := ctx.LoadModule(h, "EventsRaw")
	if err != nil {
		return fmt.Errorf("spark_realtime: events: %w", err)
	}
	source := mod.(EventSource)
	hv, _, err := pool.LoadOrNew(h.hubKey, func() (caddy.Destructor, error) {
		return newHub(h.metrics, h.logger, func(eh eventbus.Handler) (Bus, error) { return source.Open(eh, h.logger) })
	})
	if err != nil {
		return fmt.Errorf("spark_realtime: %w", err)
	}
	h.hub = hv.(*hub)
	h.hub.live.add(h, h.verifier)
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		// When the process exits, close the connections as the server
		// begins its shutdown, not after it: Caddy cleans modules up only
		// once every server has drained its requests (without a grace
		// period, for as long as they take), and admissions waiting for
		// the origin are such requests. A reload keeps them (not exiting).
		hb := h.hub
		srv.RegisterOnShutdown(func() {
			if caddy.Exiting() {
				hb.beginStop()
			}
		})
	}
	return nil
}

// fillDefaults sets the options left unset.
func (h *Handler) fillDefaults() {
	setDefault(&h.Name, defaultName)
	setDefault(&h.QueueFrames, defaultQueueFrames)
	setDefault(&h.QueueBytes, defaultQueueBytes)
	setDefault(&h.PingInterval, caddy.Duration(defaultPingInterval))
	setDefault(&h.PongTimeout, caddy.Duration(defaultPongTimeout))
	setDefault(&h.WriteTimeout, caddy.Duration(defaultWriteTimeout))
	setDefault(&h.MaxFrame, defaultMaxFrame)
	setDefault(&h.Rate, defaultRate)
	setDefault(&h.Burst, defaultBurst)
	setDefault(&h.OriginTimeout, caddy.Duration(defaultOriginTimeout))
	setDefault(&h.AdmissionTimeout, caddy.Duration(defaultAdmission))
	setDefault(&h.InFlight, defaultInFlight)
	setDefault(&h.InFlightPerEdge, defaultInFlightPerEdge)
}

// setDefault sets *v to def when it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// checkOriginURL checks the origin's base URL: http or https, a host, no
// query.
func checkOriginURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: want http(s)://host[:port][/path]", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Validate checks the configuration (after Provision filled the defaults).
func (h *Handler) Validate() error {
	if err := h.Config.Validate("spark_realtime"); err != nil {
		return err
	}
	switch {
	case h.Origin == "":
		return errors.New("spark_realtime: origin is required")
	case h.QueueFrames < 1 || h.QueueBytes < 1024:
		return errors.New("spark_realtime: queue: at least 1 frame and 1 KiB")
	case h.PingInterval <= 0 || h.PongTimeout <= 0 || h.WriteTimeout <= 0 || h.OriginTimeout <= 0 || h.AdmissionTimeout <= 0:
		return errors.New("spark_realtime: ping, pong, write, origin and admission timeouts must be positive")
	case h.MaxFrame < 128:
		return errors.New("spark_realtime: max_frame: at least 128 bytes")
	case h.Rate <= 0 || h.Burst < 1:
		return errors.New("spark_realtime: rate: a positive rate and a burst of at least 1")
	case h.InFlight < 1 || h.InFlightPerEdge < 1:
		return errors.New("spark_realtime: in_flight: at least 1")
	}
	return nil
}

// Cleanup lets go of the hub and the metrics: the last config using a hub
// stops it (connections close with 1001). Before, the connections whose
// tokens no running config's handler accepts any more (a reload retired
// their key, or changed issuer or audience) are closed with 4003, and this
// handler, which an old server may still hand an upgrade, accepts from now
// on only tokens a running handler accepts too.
func (h *Handler) Cleanup() error {
	var errs []error
	if h.hub != nil {
		h.retired.Store(true)
		h.hub.live.remove(h)
		h.hub.recheckTokens()
		if _, err := pool.Delete(h.hubKey); err != nil {
			errs = append(errs, err)
		}
	}
	if h.metrics != nil {
		if _, err := pool.Delete(metricsKey); err != nil {
			errs = append(errs, err)
		}
	}
	if h.cfg != nil {
		h.cfg.origin.close()
	}
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Destructor            = (*hub)(nil)
	_ caddy.Destructor            = (*metrics)(nil)
)
