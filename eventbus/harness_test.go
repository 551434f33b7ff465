package eventbus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/eventbus/bustest"
	"github.com/spark-edge/spark/internal/testredis"
)

// testLogger discards the bus's logs unless SPARK_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SPARK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// redisHarness runs the suite on Redis. Edges reach Redis at edgeAddrs
// (through a proxy in the shared-server run), the origin at o.Addrs.
type redisHarness struct {
	o         eventbus.RedisOptions
	edgeAddrs []string
	cut       func(t *testing.T) (restore func())
}

// fastRedisOptions are options for addrs that notice failures and expire
// presence within a test's patience.
func fastRedisOptions(t *testing.T, addrs ...string) eventbus.RedisOptions {
	o := eventbus.DefaultRedisOptions(addrs...)
	o.KeyPrefix = testredis.Prefix(t)
	o.PingInterval = 200 * time.Millisecond
	o.ReconnectMin, o.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	o.PresenceRefresh, o.PresenceTTL = 100*time.Millisecond, 500*time.Millisecond
	o.Logger = testLogger()
	return o
}

func (h *redisHarness) Origin(t *testing.T) bustest.Origin {
	p, err := eventbus.NewRedisPublisher(h.o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (h *redisHarness) Edge(t *testing.T, hd eventbus.Handler) bustest.Edge {
	o := h.o
	if h.edgeAddrs != nil {
		o.Addrs = h.edgeAddrs
	}
	s, err := eventbus.NewRedisSubscriber(o, hd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (h *redisHarness) Cut(t *testing.T) func()           { return h.cut(t) }
func (h *redisHarness) Kill(_ *testing.T, e bustest.Edge) { eventbus.Abandon(e) }
func (h *redisHarness) PresenceExpiry() time.Duration     { return h.o.PresenceTTL }

// streamHarness runs the suite on the origin stream over a real HTTP
// server. Cut stops the StreamServer (its edges are disconnected and the
// path answers 503) until restore starts a fresh one, as an origin restart
// would.
type streamHarness struct {
	token string
	url   string

	mu  sync.Mutex
	srv *eventbus.StreamServer // nil while cut
}

func newStreamHarness(t testing.TB) *streamHarness {
	h := &streamHarness{token: "test-events-token"}
	h.srv = h.newServer(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv := h.server(); srv != nil {
			srv.ServeHTTP(w, r)
			return
		}
		http.Error(w, "origin down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(func() {
		if srv := h.server(); srv != nil {
			_ = srv.Close()
		}
		hs.Close()
	})
	h.url = hs.URL
	return h
}

func (h *streamHarness) newServer(t testing.TB) *eventbus.StreamServer {
	srv, err := eventbus.NewStreamServer(eventbus.StreamServerOptions{
		Token: h.token, Logger: testLogger(),
		StreamTimeouts: eventbus.StreamTimeouts{PingInterval: 500 * time.Millisecond, PongTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func (h *streamHarness) server() *eventbus.StreamServer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.srv
}

// Origin is the harness itself: it publishes through whichever server
// runs now.
func (h *streamHarness) Origin(*testing.T) bustest.Origin { return streamOrigin{h} }

func (h *streamHarness) Edge(t *testing.T, hd eventbus.Handler) bustest.Edge {
	c, err := eventbus.NewStreamClient(h.clientOptions(), hd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h *streamHarness) clientOptions() eventbus.StreamClientOptions {
	return eventbus.StreamClientOptions{
		URL: h.url, Token: h.token, Logger: testLogger(),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		StreamTimeouts: eventbus.StreamTimeouts{PingInterval: 500 * time.Millisecond, PongTimeout: time.Second},
	}
}

func (h *streamHarness) Cut(t *testing.T) func() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	_ = srv.Close()
	return func() {
		h.mu.Lock()
		h.srv = h.newServer(t)
		h.mu.Unlock()
	}
}

func (h *streamHarness) Kill(_ *testing.T, e bustest.Edge) { eventbus.Abandon(e) }

// PresenceExpiry: the origin drops a dead edge's users as soon as its
// connection breaks.
func (h *streamHarness) PresenceExpiry() time.Duration { return time.Second }

// streamOrigin publishes through the harness's current server.
type streamOrigin struct{ h *streamHarness }

func (o streamOrigin) Publish(ctx context.Context, msgs ...eventbus.Message) error {
	srv := o.h.server()
	if srv == nil {
		return errors.New("origin down")
	}
	return srv.Publish(ctx, msgs...)
}

func (o streamOrigin) Online(ctx context.Context, user int64) (bool, error) {
	srv := o.h.server()
	if srv == nil {
		return false, errors.New("origin down")
	}
	return srv.Online(ctx, user)
}
