package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// Bus is what the hub needs of the event bus: its users' events delivered
// to the handler it was opened with, and ephemeral publishes (typing).
type Bus interface {
	eventbus.Subscriber
	eventbus.Publisher
}

// numShards is how many locks the hub's users are spread over.
const numShards = 64

// shutdownGrace bounds how long a stopping hub waits for its connections'
// close frames.
const shutdownGrace = 2 * time.Second

// hub holds an edge's connections by user and subscribes the bus to
// exactly the users connected here. It lives in a caddy.UsagePool, so a
// config reload keeps it (and every open connection); when the last config
// using it goes, every connection closes with 1001.
type hub struct {
	shards  [numShards]shard
	bus     Bus
	typing  *typingPublisher
	metrics *metrics
	logger  *zap.Logger
	// writeBuffers are the connections' write buffers, held only while a
	// message is written (an idle connection holds none).
	writeBuffers *sync.Pool
	// live are the verifiers of the running configs' handlers of this hub:
	// every open connection's token must pass one of them.
	live liveVerifiers

	// ctx ends when the hub stops; connections derive theirs from it.
	ctx    context.Context
	cancel context.CancelFunc
	// stopping ends when the hub begins to stop (beginStop): admissions
	// in progress give up, and leaving connections no longer unsubscribe
	// (the bus closes with the hub).
	stopping    context.Context
	endStopping context.CancelFunc
	stopOnce    sync.Once
	stopBy      time.Time // beginStop's time + shutdownGrace: Destruct waits no longer
	// conns counts open connections, for a stop to wait for.
	conns sync.WaitGroup
	done  chan struct{} // closed when the reconnect loop returned
}

// shard is one lock's share of the users.
type shard struct {
	mu    sync.RWMutex
	users map[int64]*userConns
	stop  bool // the hub is stopping: no new connections
}

// userConns are one user's connections on this edge.
type userConns struct {
	// subMu serialises this user's Subscribe and Unsubscribe calls, so a
	// connection arriving while the last one leaves never ends
	// unsubscribed.
	subMu      sync.Mutex
	subscribed bool // under subMu
	conns      []*conn
}

// errHubStopping refuses a connection to a stopping hub.
var errHubStopping = errors.New("the edge is stopping")

// newHub makes a hub; open opens its bus with the hub's dispatch as the
// handler.
func newHub(m *metrics, logger *zap.Logger, open func(eventbus.Handler) (Bus, error)) (*hub, error) {
	h := &hub{metrics: m, logger: logger, writeBuffers: new(sync.Pool), done: make(chan struct{})}
	for i := range h.shards {
		h.shards[i].users = make(map[int64]*userConns)
	}
	bus, err := open(h.dispatch)
	if err != nil {
		return nil, fmt.Errorf("open the event bus: %w", err)
	}
	h.bus = bus
	h.typing = newTypingPublisher(bus, logger)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.stopping, h.endStopping = context.WithCancel(context.Background())
	go h.watchReconnects()
	go h.typing.run(h.ctx)
	return h, nil
}

func (h *hub) shard(user int64) *shard {
	return &h.shards[uint64(user)%numShards]
}

// register adds c and subscribes its user (if it is the user's first
// connection here): once it returns, every event published for the user
// reaches c.
func (h *hub) register(ctx context.Context, c *conn) error {
	s := h.shard(c.user)
	s.mu.Lock()
	if s.stop {
		s.mu.Unlock()
		return errHubStopping
	}
	u := s.users[c.user]
	if u == nil {
		u = &userConns{}
		s.users[c.user] = u
	}
	u.conns = append(u.conns, c)
	h.conns.Add(1)
	s.mu.Unlock()

	u.subMu.Lock()
	defer u.subMu.Unlock()
	if u.subscribed {
		return nil
	}
	err := h.bus.Subscribe(ctx, c.user)
	// Even when it fails the bus keeps the user wanted (it subscribes them
	// once it is back): an Unsubscribe must balance it either way.
	u.subscribed = true
	if err != nil {
		h.release(c, u)
		return fmt.Errorf("subscribe user %d: %w", c.user, err)
	}
	return nil
}

// unregister removes c, unsubscribing its user when it was the last
// connection here.
func (h *hub) unregister(c *conn) {
	s := h.shard(c.user)
	s.mu.RLock()
	u := s.users[c.user]
	s.mu.RUnlock()
	if u == nil {
		return
	}
	u.subMu.Lock()
	defer u.subMu.Unlock()
	h.release(c, u)
}

// release removes c from u (under u.subMu) and, when it was the last,
// unsubscribes the user. The entry stays in the map while unsubscribing: a
// connection arriving meanwhile finds it and waits for subMu.
func (h *hub) release(c *conn, u *userConns) {
	if !h.remove(c, u) || !u.subscribed {
		return
	}
	// A stopping hub's bus closes with it: no unsubscribes (ten thousand,
	// one bus round trip each, held a stopping edge up).
	if h.stopping.Err() == nil {
		if err := h.bus.Unsubscribe(h.ctx, c.user); err != nil && h.ctx.Err() == nil {
			h.logger.Warn("unsubscribe failed", zap.Int64("user", c.user), zap.Error(err))
		}
	}
	u.subscribed = false
	s := h.shard(c.user)
	s.mu.Lock()
	if len(u.conns) == 0 && s.users[c.user] == u {
		delete(s.users, c.user)
	}
	s.mu.Unlock()
}

// remove takes c out of u; it reports whether u is left empty.
func (h *hub) remove(c *conn, u *userConns) (empty bool) {
	s := h.shard(c.user)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range u.conns {
		if x == c {
			u.conns = append(u.conns[:i], u.conns[i+1:]...)
			h.conns.Done()
			break
		}
	}
	if len(u.conns) == 0 && !u.subscribed && s.users[c.user] == u {
		delete(s.users, c.user)
	}
	return len(u.conns) == 0
}

// dispatch is the bus's handler: a durable event goes through each of the
// user's connections' sequencers, an ephemeral typing frame to each
// connection that knows the conversation. It never blocks.
func (h *hub) dispatch(m eventbus.Message) {
	if m.Seq > 0 {
		le, err := newLiveEvent(m.Seq, m.Payload)
		if err != nil {
			h.logger.Warn("undecodable event from the bus", zap.Int64("user", m.UserID), zap.Int64("seq", m.Seq), zap.Error(err))
			return
		}
		h.each(m.UserID, func(c *conn) { c.deliverLive(le) })
		return
	}
	n, err := decodeTypingNotice(m.Payload)
	if err != nil {
		h.logger.Debug("undecodable ephemeral message from the bus", zap.Int64("user", m.UserID), zap.Error(err))
		return
	}
	frame := appendTypingFrame(nil, n.ConversationID, n.UserID)
	h.each(m.UserID, func(c *conn) {
		if peer, known := c.peers.peer(n.ConversationID); known && peer == n.UserID {
			c.q.push(outFrame{data: frame, kind: kindOutTyping}) // typing may be dropped
		}
	})
}

// each calls fn for every connection of user here, under the shard's read
// lock (fn must not block).
func (h *hub) each(user int64, fn func(*conn)) {
	s := h.shard(user)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.users[user]; u != nil {
		for _, c := range u.conns {
			fn(c)
		}
	}
}

// all calls fn for every connection of the hub, one shard at a time.
func (h *hub) all(fn func(*conn)) {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, u := range s.users {
			for _, c := range u.conns {
				fn(c)
			}
		}
		s.mu.RUnlock()
	}
}

// watchReconnects makes every connection catch up from the origin's log
// each time the bus re-established its subscription.
func (h *hub) watchReconnects() {
	defer close(h.done)
	for {
		select {
		case <-h.bus.Reconnected():
			h.logger.Info("event bus reconnected; every connection catches up from the origin")
			h.all((*conn).catchUp)
		case <-h.ctx.Done():
			return
		}
	}
}

// beginStop refuses new connections, makes admissions in progress give
// up and asks every connection to close with 1001, at once: each
// connection's writer sends its close frame concurrently. It returns
// without waiting; it runs once (when the process begins to exit, from
// the server's shutdown hook, else from Destruct).
func (h *hub) beginStop() {
	h.stopOnce.Do(func() {
		h.stopBy = time.Now().Add(shutdownGrace)
		var conns []*conn
		for i := range h.shards {
			s := &h.shards[i]
			s.mu.Lock()
			s.stop = true
			for _, u := range s.users {
				conns = append(conns, u.conns...)
			}
			s.mu.Unlock()
		}
		h.endStopping()
		// No lock held: a connection that ends at once takes its shard's
		// lock to leave.
		for _, c := range conns {
			c.requestClose(closeRequest{code: closeGoingAway, reason: goingAwayReason, send: true})
		}
	})
}

// Destruct stops the hub (caddy.Destructor: the last config using it is
// gone): every connection is closed with 1001 (beginStop, unless the exit
// began it already), waiting for them until shutdownGrace after beginStop
// at most, then the bus.
func (h *hub) Destruct() error {
	h.beginStop()
	waited := make(chan struct{})
	go func() { h.conns.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(time.Until(h.stopBy)):
		h.logger.Warn("connections still closing after the grace period")
	}
	h.cancel()
	<-h.done
	<-h.typing.done
	if err := h.bus.Close(); err != nil {
		return fmt.Errorf("close the event bus: %w", err)
	}
	return nil
}
