package eventbus

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// StreamServerOptions configure the origin's end of the stream.
type StreamServerOptions struct {
	// Token is the secret edges present as "Authorization: Bearer
	// <token>" (origin --events-token). Required.
	Token string
	// QueueFrames and QueueBytes bound each edge's send queue. An edge
	// whose queue overflows is disconnected (close 1013); it reconnects,
	// gets Reconnected and catches up from the log. Defaults 65,536 frames
	// and 16 MiB.
	QueueFrames, QueueBytes int
	StreamTimeouts
	// Logger receives connections, losses and slow edges. Default:
	// slog's default logger.
	Logger *slog.Logger
}

// StreamServer is the origin's end of the stream for deployments without
// Redis: an http.Handler for GET /internal/events (WebSocket) that edges
// connect to, a Publisher that sends each message to the edges subscribed
// to its user (and relays the edges' own publishes the same way), and a
// Presence: a user is online while a connected edge subscribes to them.
type StreamServer struct {
	o        StreamServerOptions
	token    [sha256.Size]byte
	upgrader websocket.Upgrader
	log      *slog.Logger
	reg      registry
	slow     atomic.Uint64

	mu     sync.Mutex
	edges  map[*streamEdge]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Interface guards.
var (
	_ http.Handler = (*StreamServer)(nil)
	_ Publisher    = (*StreamServer)(nil)
	_ Presence     = (*StreamServer)(nil)
)

// streamEdge is one connected edge.
type streamEdge struct {
	conn *wsConn
	addr string
	subs map[int64]struct{} // its users; used by its reader only
}

// NewStreamServer returns a server; mount it at StreamPath.
func NewStreamServer(o StreamServerOptions) (*StreamServer, error) {
	if o.Token == "" {
		return nil, errors.New("eventbus: the stream server needs a token")
	}
	orDefault(&o.QueueFrames, 65536)
	orDefault(&o.QueueBytes, 16<<20)
	o.StreamTimeouts.fill()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &StreamServer{
		o: o, token: sha256.Sum256([]byte(o.Token)), log: o.Logger,
		upgrader: websocket.Upgrader{
			ReadBufferSize: streamBuffer, WriteBufferSize: streamBuffer,
			HandshakeTimeout: o.WriteTimeout,
			// Edges are not browsers: a request with an Origin is refused.
			CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
		},
		edges: make(map[*streamEdge]struct{}),
	}, nil
}

// ServeHTTP accepts an edge's stream connection and serves it until it
// ends.
func (s *StreamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		s.log.Warn("eventbus: events token refused", slog.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="spark events"`)
		http.Error(w, "events token refused", http.StatusUnauthorized)
		return
	}
	if s.isClosed() {
		http.Error(w, "origin stopping", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	e := &streamEdge{conn: newWSConn(ws, s.o.limits(s.o.QueueFrames, s.o.QueueBytes)), addr: r.RemoteAddr, subs: make(map[int64]struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		e.conn.close(websocket.CloseGoingAway, "origin stopping")
		return
	}
	s.edges[e] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.log.Info("eventbus: edge connected", slog.String("edge", e.addr))
	err = e.conn.readLoop(func(f *frame) error { return s.handle(e, f) })
	e.conn.close(closeCode(err), "")
	for u := range e.subs {
		s.reg.remove(e, u)
	}
	s.mu.Lock()
	delete(s.edges, e)
	s.mu.Unlock()
	s.log.Info("eventbus: edge disconnected", slog.String("edge", e.addr), slog.Any("reason", err))
}

// authorized compares the bearer token in constant time (of the hashes:
// the length does not leak either).
func (s *StreamServer) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

func (s *StreamServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// handle applies one frame from edge e.
func (s *StreamServer) handle(e *streamEdge, f *frame) error {
	switch f.op {
	case opSub:
		for _, u := range f.users {
			if _, ok := e.subs[u]; !ok {
				e.subs[u] = struct{}{}
				s.reg.add(e, u)
			}
		}
	case opUnsub:
		for _, u := range f.users {
			if _, ok := e.subs[u]; ok {
				delete(e.subs, u)
				s.reg.remove(e, u)
			}
		}
	case opPub:
		s.deliver(f.user, f.seq, f.payload)
		return nil
	default:
		return &frameError{errors.New("eventbus: an edge sent a message frame")}
	}
	if f.id == 0 {
		return nil
	}
	return e.conn.send(&frame{ack: f.id})
}

// Publish sends each message to the edges subscribed to its user. It
// never waits on the network: an edge whose queue is full is disconnected.
// Payloads must be JSON (one with newlines is sent compacted).
func (s *StreamServer) Publish(_ context.Context, msgs ...Message) error {
	for i := range msgs {
		p, err := checkPayload(&msgs[i])
		if err != nil {
			return fmt.Errorf("eventbus: publish message %d of %d: %w", i+1, len(msgs), err)
		}
		s.deliver(msgs[i].UserID, msgs[i].Seq, p)
	}
	return nil
}

// deliver queues one message for every edge subscribed to user.
func (s *StreamServer) deliver(user, seq int64, payload []byte) {
	f := frame{user: user, seq: seq, payload: payload}
	s.reg.each(user, func(e *streamEdge) {
		if e.conn.send(&f) == errQueueFull {
			s.slow.Add(1)
			s.log.Warn("eventbus: edge too slow, disconnected", slog.String("edge", e.addr))
		}
	})
}

// Online reports whether a connected edge subscribes to user.
func (s *StreamServer) Online(_ context.Context, user int64) (bool, error) {
	return s.reg.online(user), nil
}

// StreamStats are a StreamServer's counters.
type StreamStats struct {
	// Edges is how many edges are connected.
	Edges int
	// SlowDisconnects counts edges disconnected for a full send queue.
	SlowDisconnects uint64
}

// Stats returns the server's counters.
func (s *StreamServer) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamStats{Edges: len(s.edges), SlowDisconnects: s.slow.Load()}
}

// Close disconnects every edge (close 1001: they reconnect, to this origin
// once it serves again) and refuses new ones.
func (s *StreamServer) Close() error {
	s.mu.Lock()
	s.closed = true
	edges := slices.Collect(maps.Keys(s.edges))
	s.mu.Unlock()
	for _, e := range edges {
		e.conn.close(websocket.CloseGoingAway, "origin stopping")
	}
	s.wg.Wait()
	return nil
}
