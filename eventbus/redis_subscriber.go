package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/spark-edge/spark/internal/backoff"
)

// RedisSubscriber is an edge's handle on the Redis bus: it subscribes to
// the users connected to the edge, keeps their presence marks, and
// publishes the edge's ephemeral events. It holds one subscriber
// connection per node (per master in a Cluster, with sharded pub/sub);
// when one is lost it reconnects with backoff, re-subscribes every wanted
// user, and then signals Reconnected. Safe for concurrent use.
type RedisSubscriber struct {
	o        RedisOptions
	handler  Handler
	names    naming
	pub      *RedisPublisher
	topo     topology
	presence presenceMarks
	log      *slog.Logger

	reconnected chan struct{}
	lost        chan struct{} // a connection ended, or a user's node is not connected
	renew       chan struct{} // renew presence now (after a reconnection)

	subscriptions
	conns map[string]*subConn // by node address; nil while disconnected; guarded by mu

	// presenceMu orders presence writes: a renewal that read the wanted
	// users before an Unsubscribe must not write its mark after the
	// Unsubscribe deleted it.
	presenceMu sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisor, the presence loop, the readers
}

// Interface guards.
var (
	_ Subscriber = (*RedisSubscriber)(nil)
	_ Publisher  = (*RedisSubscriber)(nil)
)

var (
	// ErrNotConnected is returned by Subscribe while the bus is
	// unreachable. The users stay wanted: they are subscribed as soon as
	// the connection is back, and Reconnected follows.
	ErrNotConnected = errors.New("eventbus: not connected (the users are subscribed when the connection is back, then Reconnected is signalled)")
	// ErrClosed is returned by a closed subscriber.
	ErrClosed = errors.New("eventbus: closed")
)

// resubscribeTimeout bounds a (re)connection's subscribe round trips.
const resubscribeTimeout = 30 * time.Second

// NewRedisSubscriber connects to the Redis deployment o describes and
// delivers the messages of the users it is asked to Subscribe to h. The
// first connection is tried before it returns; when Redis is unreachable
// that is not an error: it keeps trying in the background.
func NewRedisSubscriber(o RedisOptions, h Handler) (*RedisSubscriber, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("eventbus: a subscriber needs a handler")
	}
	pub := newRedisPublisher(&o)
	s := &RedisSubscriber{
		o: o, handler: h, names: pub.names, pub: pub, log: o.Logger,
		topo:        newTopology(&o, pub.client),
		presence:    presenceMarks{client: pub.client, names: pub.names, node: o.Node, ttl: o.PresenceTTL},
		reconnected: make(chan struct{}, 1), lost: make(chan struct{}, 1), renew: make(chan struct{}, 1),
		subscriptions: newSubscriptions(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	err := s.connect(false)
	if err != nil {
		s.log.Warn("eventbus: redis unreachable; subscribing when it answers", slog.Any("error", err))
	}
	s.wg.Add(2)
	go s.supervise(err == nil)
	go s.keepPresence()
	return s, nil
}

// Subscribe subscribes the users and marks them present. It returns once
// the subscriptions are in effect: every message published after it
// returns is delivered. On an error the users stay wanted (see
// ErrNotConnected); Unsubscribe them as usual.
func (s *RedisSubscriber) Subscribe(ctx context.Context, users ...int64) error {
	return s.change(ctx, true, users)
}

// Unsubscribe ends the users' subscriptions and deletes their presence
// marks. Once it returns, none of their messages is delivered any more.
func (s *RedisSubscriber) Unsubscribe(ctx context.Context, users ...int64) error {
	return s.change(ctx, false, users)
}

func (s *RedisSubscriber) change(ctx context.Context, subscribe bool, users []int64) error {
	if err := s.lockChange(subscribe, users); err != nil {
		return err
	}
	var barriers []barrier
	err := ErrNotConnected
	if s.conns != nil {
		barriers, err = s.changeLocked(ctx, subscribe, users)
	}
	s.mu.Unlock()
	s.updatePresence(ctx, subscribe, users)
	if !subscribe && errors.Is(err, ErrNotConnected) {
		return nil // no connection, no subscription
	}
	if err != nil {
		return err
	}
	return waitAll(ctx, barriers)
}

// updatePresence marks or unmarks users. A failure is only logged: the
// next renewal repairs a missing mark, and an orphan expires.
func (s *RedisSubscriber) updatePresence(ctx context.Context, present bool, users []int64) {
	s.presenceMu.Lock()
	defer s.presenceMu.Unlock()
	s.writePresence(ctx, present, users)
}

// writePresence writes marks; s.presenceMu is held.
func (s *RedisSubscriber) writePresence(ctx context.Context, present bool, users []int64) {
	var err error
	if present {
		err = s.presence.mark(ctx, users)
	} else {
		err = s.presence.unmark(ctx, users)
	}
	if err != nil {
		s.log.Warn("eventbus: presence update failed", slog.Bool("present", present), slog.Int("users", len(users)), slog.Any("error", err))
	}
}

// barrier is a PING awaited on one connection.
type barrier struct {
	c    *subConn
	pong <-chan struct{}
}

func waitAll(ctx context.Context, bs []barrier) error {
	for _, b := range bs {
		if err := b.c.wait(ctx, b.pong); err != nil {
			return err
		}
	}
	return nil
}

// changeLocked writes the (un)subscriptions of users on the connections of
// their nodes, each followed by a barrier; s.mu is held, so commands reach
// every connection in the order the calls were made.
func (s *RedisSubscriber) changeLocked(ctx context.Context, subscribe bool, users []int64) ([]barrier, error) {
	groups := make(map[*subConn][]string)
	missing := false
	for _, u := range users {
		ch := s.names.channel(u)
		addr, err := s.topo.route(ctx, ch)
		if err != nil {
			return nil, err
		}
		c := s.conns[addr]
		if c == nil {
			missing = true
			continue
		}
		groups[c] = append(groups[c], ch)
	}
	var bs []barrier
	for c, chs := range groups {
		pong, err := c.change(subscribe, chs)
		if err != nil {
			return nil, err
		}
		bs = append(bs, barrier{c, pong})
	}
	if missing && subscribe { // a node we have no connection to: the topology changed
		signal(s.lost)
		return nil, fmt.Errorf("%w: a user's node is not connected yet", ErrNotConnected)
	}
	return bs, nil
}

// connect dials every node, subscribes every wanted user, and on a
// reconnection (or when users were wanted meanwhile) signals Reconnected.
func (s *RedisSubscriber) connect(reconnecting bool) error {
	ctx, cancel := context.WithTimeout(s.ctx, resubscribeTimeout)
	defer cancel()
	addrs, err := s.topo.nodes(ctx)
	if err != nil {
		return err
	}
	conns := make(map[string]*subConn, len(addrs))
	for _, a := range addrs {
		c, br, err := dialSub(ctx, a, &s.o, s.names, s.topo.sharded(), s.handler)
		if err != nil {
			closeAll(conns)
			return err
		}
		conns[a] = c
		c.start(br, &s.wg, s.ended)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeAll(conns)
		return ErrClosed
	}
	s.conns = conns
	users := s.wanted.list()
	barriers, err := s.changeLocked(ctx, true, users)
	s.mu.Unlock()
	if err == nil {
		err = waitAll(ctx, barriers)
	}
	if err != nil {
		s.disconnect()
		return err
	}
	if reconnecting || len(users) > 0 {
		signal(s.renew)
		signal(s.reconnected)
	}
	return nil
}

// ended is told by a reader that its connection ended.
func (s *RedisSubscriber) ended(c *subConn) {
	s.mu.Lock()
	current := s.conns != nil && s.conns[c.addr] == c
	s.mu.Unlock()
	if current {
		s.log.Warn("eventbus: redis subscriber connection lost; reconnecting", slog.String("node", c.addr), slog.Any("error", c.err))
		signal(s.lost)
	}
}

// disconnect closes the current connections.
func (s *RedisSubscriber) disconnect() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	closeAll(conns)
}

func closeAll(conns map[string]*subConn) {
	for _, c := range conns {
		c.close()
	}
}

// supervise checks the connections' health while connected, and
// reconnects with backoff when one is lost.
func (s *RedisSubscriber) supervise(connected bool) {
	defer s.wg.Done()
	health := time.NewTicker(s.o.PingInterval)
	defer health.Stop()
	bo := backoff.Backoff{Min: s.o.ReconnectMin, Max: s.o.ReconnectMax}
	for {
		if connected {
			select {
			case <-s.ctx.Done():
				return
			case <-health.C:
				s.pingAll()
				continue
			case <-s.lost:
				s.disconnect()
				connected = false
			}
		}
		if !bo.Wait(s.ctx) {
			return
		}
		select { // a loss signalled before this attempt concerns the old connections
		case <-s.lost:
		default:
		}
		if err := s.connect(true); err != nil {
			s.log.Debug("eventbus: redis reconnection failed", slog.Any("error", err))
			continue
		}
		s.log.Info("eventbus: redis subscriber reconnected")
		bo.Reset()
		connected = true
	}
}

func (s *RedisSubscriber) pingAll() {
	s.mu.Lock()
	conns := slices.Collect(maps.Values(s.conns))
	s.mu.Unlock()
	for _, c := range conns {
		c.ping()
	}
}

// keepPresence renews the wanted users' presence marks every
// PresenceRefresh, and at once after a reconnection (Redis may have
// restarted empty).
func (s *RedisSubscriber) keepPresence() {
	defer s.wg.Done()
	t := time.NewTicker(s.o.PresenceRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.renew:
		}
		s.presenceMu.Lock()
		s.mu.Lock()
		users := s.wanted.list()
		s.mu.Unlock()
		if len(users) > 0 {
			s.writePresence(s.ctx, true, users)
		}
		s.presenceMu.Unlock()
	}
}

// Reconnected receives a value after each re-established subscription.
func (s *RedisSubscriber) Reconnected() <-chan struct{} { return s.reconnected }

// Publish publishes msgs like a RedisPublisher (an edge's ephemeral
// events); they reach every subscriber of their users, this one included.
func (s *RedisSubscriber) Publish(ctx context.Context, msgs ...Message) error {
	return s.pub.Publish(ctx, msgs...)
}

// Close ends the subscriptions, deletes the node's presence marks and
// releases every connection. No message is delivered once it returns.
func (s *RedisSubscriber) Close() error { return s.close(true) }

// close stops everything; with cleanup false the presence marks are left
// to expire, as when the node dies.
func (s *RedisSubscriber) close(cleanup bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	users := s.wanted.list()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	s.cancel()
	closeAll(conns)
	s.wg.Wait()
	var err error
	if cleanup && len(users) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.ReadTimeout+s.o.WriteTimeout)
		err = s.presence.unmark(ctx, users)
		cancel()
	}
	return errors.Join(err, s.pub.Close())
}
