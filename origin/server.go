// Package origin is the Spark origin API: matching, swipes, profiles, chat and
// location over a store.Store (PostGIS or the embedded memory store). It
// states cacheability to Spark edges with standard headers plus Cache-Tags
// and Spark-Purge. It never imports Caddy or the edge modules.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/origin/store"
)

// Server is the origin's HTTP API.
type Server struct {
	store     store.Store
	storeName string
	auth      *Authenticator
	metrics   *Metrics
	log       *slog.Logger
	mux       *http.ServeMux
	photos    PhotoOptions
	uploads   chan struct{} // one token per upload in flight
	locLimit  *userLimiter  // nil: location updates unlimited
	events    *eventPublisher
	messages  *messageBatcher
	presence  eventbus.Presence // nil: nobody is online
	stream    http.Handler      // nil: no /internal/events
	push      PushEnqueuer      // nil: no push notifications
}

// ServerOptions configures NewServer.
type ServerOptions struct {
	// Store holds the data; required.
	Store store.Store
	// StoreName is the metric label: "memory" or "postgis".
	StoreName string
	// Auth verifies bearer tokens; required.
	Auth *Authenticator
	// Metrics are the collectors; nil: NewMetrics(store if it is a PoolStater).
	Metrics *Metrics
	// Logger gets request failures; nil: slog.Default().
	Logger *slog.Logger
	// Photos configures uploads; without a Storage the photo routes answer 404.
	Photos PhotoOptions
	// LocationLimit bounds PUT /api/users/me/location per user; nil:
	// DefaultLocationLimit, Every 0: no limit (load tests).
	LocationLimit *RateLimit
	// Events receives every event once its write committed (the realtime
	// bus: eventbus.RedisPublisher, or the origin's own
	// eventbus.StreamServer); nil: events are only kept in the log, for
	// GET /api/events.
	Events eventbus.Publisher
	// Presence answers Online; nil: Online reports false.
	Presence eventbus.Presence
	// EventStream, when set, is served at GET /internal/events (StreamPath):
	// the stream edges subscribe to when there is no Redis. It checks its
	// own credentials.
	EventStream http.Handler
	// MessageBatch configures batched message writes; nil:
	// DefaultMessageBatchOptions.
	MessageBatch *MessageBatchOptions
	// Push takes, once their write committed, the messages stored, the
	// matches made and the likes received; nil: no push notifications.
	Push PushEnqueuer
}

// NewServer wires the routes.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("origin: server needs a store and an authenticator")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(poolStaterFor(o.Store))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StoreName == "" {
		o.StoreName = "store"
	}
	if err := o.Photos.withDefaults(); err != nil {
		return nil, err
	}
	ll := DefaultLocationLimit
	if o.LocationLimit != nil {
		ll = *o.LocationLimit
	}
	lim, err := newUserLimiter(ll, nil)
	if err != nil {
		return nil, err
	}
	mb := DefaultMessageBatchOptions()
	if o.MessageBatch != nil {
		if mb, err = o.MessageBatch.withDefaults(); err != nil {
			return nil, err
		}
	}
	s := &Server{store: o.Store, storeName: o.StoreName, auth: o.Auth, metrics: o.Metrics, log: o.Logger, mux: http.NewServeMux(),
		photos: o.Photos, uploads: make(chan struct{}, o.Photos.MaxInFlight), locLimit: lim,
		events: newEventPublisher(o.Events, o.Metrics, o.Logger), presence: o.Presence, stream: o.EventStream, push: o.Push}
	s.messages = newMessageBatcher(mb, s.storeMessages, o.Metrics.MessageBatchSize)
	s.routes()
	return s, nil
}

// Online reports whether user holds a realtime connection at some edge now
// (false without a Presence).
func (s *Server) Online(ctx context.Context, user int64) (bool, error) {
	if s.presence == nil {
		return false, nil
	}
	online, err := s.presence.Online(ctx, user)
	if err != nil {
		return false, fmt.Errorf("origin: presence of %d: %w", user, err)
	}
	return online, nil
}

// Drain waits until the message batches under way committed and every
// committed event was handed to the bus, or ctx ends. Run calls it after
// the HTTP server stopped, before closing the store.
func (s *Server) Drain(ctx context.Context) error {
	if err := s.messages.drain(ctx); err != nil {
		return err
	}
	return s.events.drain(ctx)
}

// Metrics returns the server's collectors.
func (s *Server) Metrics() *Metrics { return s.metrics }

// healthz answers while the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers while the store answers too.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "not-ready", "database unreachable")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "store": s.storeName})
}
