package origin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/internal/redisconn"
)

// DevEventsToken is the events stream's shared secret with the embedded
// store when none is configured: the one scripts/run.sh (`make run`) gives
// both the origin and the edge. Never accepted with PostGIS.
const DevEventsToken = "spark-development-events-token-not-for-production"

// Event log retention and bus defaults.
const (
	// DefaultEventsKeepLast: a user's newest events always kept.
	DefaultEventsKeepLast = 10_000
	// DefaultEventsKeepFor: how long an event is kept whatever the count.
	DefaultEventsKeepFor = 30 * 24 * time.Hour
	// DefaultEventsPruneEvery: how often retention runs.
	DefaultEventsPruneEvery = 10 * time.Minute
	// DefaultEventsRedisPrefix starts the bus's Redis channels and keys.
	DefaultEventsRedisPrefix = "spark:"
)

// EventsConfig configures the realtime bus the origin publishes events to,
// and the event log's retention.
type EventsConfig struct {
	// Redis lists the bus's Redis address(es) (two or more: a Cluster);
	// empty: the origin serves its own stream at StreamPath.
	Redis []string
	// RedisPrefix starts the bus's channels and keys; default
	// DefaultEventsRedisPrefix.
	RedisPrefix string
	// Token is the stream's shared secret, given to the edges too; empty:
	// DevEventsToken with the embedded store, no stream on PostGIS. On
	// PostGIS it must be at least 32 bytes and not a development secret.
	Token string
	// KeepLast and KeepFor: each user keeps their last KeepLast events or
	// KeepFor of them, whichever is more; defaults 10,000 and 30 days.
	KeepLast int64
	KeepFor  time.Duration
	// PruneEvery is how often retention runs; default 10 minutes.
	PruneEvery time.Duration
}

func (c EventsConfig) withDefaults() EventsConfig {
	if c.RedisPrefix == "" {
		c.RedisPrefix = DefaultEventsRedisPrefix
	}
	if c.KeepLast <= 0 {
		c.KeepLast = DefaultEventsKeepLast
	}
	if c.KeepFor <= 0 {
		c.KeepFor = DefaultEventsKeepFor
	}
	if c.PruneEvery <= 0 {
		c.PruneEvery = DefaultEventsPruneEvery
	}
	return c
}

// ResolveEventsToken returns the events stream's secret: none when the bus
// is Redis; the configured one (on PostGIS only if strong: at least 32
// bytes, not a development secret); else DevEventsToken with the embedded
// store (dev reports it) and none on PostGIS (no stream: events stay in
// the log, for GET /api/events).
func ResolveEventsToken(token, databaseURL string, redis bool) (tok string, dev bool, err error) {
	switch {
	case redis:
		return "", false, nil
	case token != "" && databaseURL != "":
		if token == DevEventsToken {
			return "", false, errors.New("origin: refusing the development events token of --events-token / SPARK_EVENTS_TOKEN on PostGIS")
		}
		if err := authtoken.CheckSecret([]byte(token)); err != nil {
			return "", false, fmt.Errorf("origin: refusing the events token of --events-token / SPARK_EVENTS_TOKEN on PostGIS: %w", err)
		}
		return token, false, nil
	case token != "":
		return token, token == DevEventsToken, nil
	case databaseURL == "":
		return DevEventsToken, true, nil
	}
	return "", false, nil
}

// eventBus is what Run wires into the server: the publisher, the presence
// and, without Redis, the stream edges subscribe to.
type eventBus struct {
	publisher eventbus.Publisher
	presence  eventbus.Presence
	stream    http.Handler
	closers   []func() error
}

func (b *eventBus) close() {
	for _, c := range b.closers {
		_ = c()
	}
}

// openEventBus opens the bus cfg names: Redis, or the origin's own stream
// (with the resolved token); none on PostGIS without a token.
func openEventBus(cfg EventsConfig, databaseURL string, log *slog.Logger) (*eventBus, error) {
	tok, dev, err := ResolveEventsToken(cfg.Token, databaseURL, len(cfg.Redis) > 0)
	if err != nil {
		return nil, err
	}
	b := &eventBus{}
	switch {
	case len(cfg.Redis) > 0:
		p, err := eventbus.NewRedisPublisher(eventbus.RedisOptions{Options: redisconn.Options{Addrs: cfg.Redis}, KeyPrefix: cfg.RedisPrefix, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("origin: realtime bus on Redis %v: %w", cfg.Redis, err)
		}
		b.publisher, b.presence, b.closers = p, p, append(b.closers, p.Close)
		log.Info("realtime events published through Redis", "addrs", cfg.Redis, "prefix", cfg.RedisPrefix)
	case tok != "":
		ss, err := eventbus.NewStreamServer(eventbus.StreamServerOptions{Token: tok, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("origin: realtime event stream: %w", err)
		}
		b.publisher, b.presence, b.stream, b.closers = ss, ss, ss, append(b.closers, ss.Close)
		if dev {
			log.Warn("!!! the event stream at " + StreamPath + " uses the fixed DEVELOPMENT token: anyone can follow every user's events. Set --events-token / SPARK_EVENTS_TOKEN outside development. !!!")
		}
	default:
		log.Warn("no realtime bus: set --events-token (the origin's stream at " + StreamPath + ") or --events-redis; events are kept in the event log only (GET /api/events)")
	}
	return b, nil
}
