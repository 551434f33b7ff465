package eventbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/spark-edge/spark/internal/backoff"
)

// StreamClientOptions configure an edge's end of the origin stream.
type StreamClientOptions struct {
	// URL is the origin: its base URL (http://127.0.0.1:8081, the stream
	// then at StreamPath) or the stream's full ws:// or wss:// URL.
	URL string
	// Token is the secret the origin expects (its --events-token).
	Token string
	StreamTimeouts
	// DialTimeout bounds connecting, handshake included. Default 5 s.
	DialTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the wait between reconnection
	// attempts (doubling, with jitter). Defaults 100 ms and 5 s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives connection losses and recoveries. Default: slog's
	// default logger.
	Logger *slog.Logger
}

// The edge's send queue: subscriptions and ephemeral publishes.
const (
	clientQueueFrames = 65536
	clientQueueBytes  = 4 << 20
)

// StreamClient is an edge's handle on the origin stream: a Subscriber,
// and a Publisher whose messages the origin relays to every edge
// subscribed to their users (this one included). It keeps one connection;
// when it is lost it reconnects with backoff and jitter, re-subscribes
// every wanted user, then signals Reconnected. Safe for concurrent use.
type StreamClient struct {
	o       StreamClientOptions
	url     string
	header  http.Header
	dialer  websocket.Dialer
	handler Handler
	log     *slog.Logger

	reconnected chan struct{}

	subscriptions
	conn   *clientConn // nil while disconnected; guarded by mu, as nextID
	nextID int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisor and the reader
}

// Interface guards.
var (
	_ Subscriber = (*StreamClient)(nil)
	_ Publisher  = (*StreamClient)(nil)
)

// clientConn is one connection to the origin.
type clientConn struct {
	*wsConn
	readDone chan struct{} // closed when its reader has returned
	mu       sync.Mutex
	acks     map[int64]chan struct{}
}

// NewStreamClient connects to the origin's stream and delivers the
// messages of the users it is asked to Subscribe to h. The first
// connection is tried before it returns; an unreachable origin is not an
// error: it keeps trying in the background.
func NewStreamClient(o StreamClientOptions, h Handler) (*StreamClient, error) {
	u, err := streamURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Token == "" {
		return nil, errors.New("eventbus: the stream client needs the origin's events token")
	}
	if h == nil {
		return nil, errors.New("eventbus: a subscriber needs a handler")
	}
	o.StreamTimeouts.fill()
	orDefault(&o.DialTimeout, 5*time.Second)
	fillReconnect(&o.ReconnectMin, &o.ReconnectMax)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &StreamClient{
		o: o, url: u, header: http.Header{"Authorization": {"Bearer " + o.Token}}, handler: h, log: o.Logger,
		dialer:      websocket.Dialer{HandshakeTimeout: o.DialTimeout, ReadBufferSize: streamBuffer, WriteBufferSize: streamBuffer},
		reconnected: make(chan struct{}, 1), subscriptions: newSubscriptions(),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	first, err := c.connect(false)
	if err != nil {
		c.log.Warn("eventbus: origin stream unreachable; subscribing when it answers", slog.Any("error", err))
	}
	c.wg.Add(1)
	go c.supervise(first)
	return c, nil
}

// streamURL turns the configured origin URL into the stream's URL.
func streamURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("eventbus: origin stream URL %q: want http(s)://host[:port] or ws(s)://host[:port]/path", raw)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("eventbus: origin stream URL %q: scheme %q", raw, u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = StreamPath
	}
	return u.String(), nil
}

// Subscribe subscribes the users at the origin. It returns once the
// origin confirmed: every message published after it returns is
// delivered. On an error the users stay wanted (see ErrNotConnected);
// Unsubscribe them as usual.
func (c *StreamClient) Subscribe(ctx context.Context, users ...int64) error {
	return c.change(ctx, opSub, users)
}

// Unsubscribe ends the users' subscriptions. Once it returns, none of
// their messages is delivered any more.
func (c *StreamClient) Unsubscribe(ctx context.Context, users ...int64) error {
	return c.change(ctx, opUnsub, users)
}

func (c *StreamClient) change(ctx context.Context, o op, users []int64) error {
	if err := c.lockChange(o == opSub, users); err != nil {
		return err
	}
	conn := c.conn
	if conn == nil {
		c.mu.Unlock()
		if o == opUnsub {
			return nil
		}
		return ErrNotConnected
	}
	ack, err := c.requestLocked(conn, o, users)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return conn.wait(ctx, ack)
}

// requestLocked queues o's frames for users on conn, the last one with an
// id whose ack it returns; c.mu is held, so frames leave in call order.
func (c *StreamClient) requestLocked(conn *clientConn, o op, users []int64) (<-chan struct{}, error) {
	c.nextID++
	id := c.nextID
	ack := make(chan struct{})
	conn.mu.Lock()
	conn.acks[id] = ack
	conn.mu.Unlock()
	for {
		n := min(len(users), usersPerFrame)
		f := frame{op: o, users: users[:n]}
		if n == len(users) {
			f.id = id
		}
		if err := conn.send(&f); err != nil {
			return nil, fmt.Errorf("eventbus: origin stream: %w", err)
		}
		if users = users[n:]; len(users) == 0 {
			return ack, nil
		}
	}
}

// wait waits for an ack.
func (conn *clientConn) wait(ctx context.Context, ack <-chan struct{}) error {
	select {
	case <-ack:
		return nil
	case <-conn.closed():
		return fmt.Errorf("%w: the origin stream connection was lost", ErrNotConnected)
	case <-ctx.Done():
		return fmt.Errorf("eventbus: waiting for the origin's ack: %w", ctx.Err())
	}
}

// handle applies one frame from the origin.
func (c *StreamClient) handle(conn *clientConn, f *frame) error {
	switch {
	case f.op != opNone:
		return &frameError{errors.New("eventbus: the origin sent an edge's frame")}
	case f.ack != 0:
		conn.mu.Lock()
		ack := conn.acks[f.ack]
		delete(conn.acks, f.ack)
		conn.mu.Unlock()
		if ack != nil {
			close(ack)
		}
	default:
		c.handler(Message{UserID: f.user, Seq: f.seq, Payload: bytes.Clone(f.payload)})
	}
	return nil
}

// connect dials the origin, starts reading, re-subscribes every wanted
// user and, on a reconnection (or when users were wanted meanwhile),
// signals Reconnected.
func (c *StreamClient) connect(reconnecting bool) (*clientConn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.o.DialTimeout)
	defer cancel()
	ws, resp, err := c.dialer.DialContext(ctx, c.url, c.header)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("eventbus: dial origin stream %s: %w", c.url, err)
	}
	conn := &clientConn{
		wsConn:   newWSConn(ws, c.o.limits(clientQueueFrames, clientQueueBytes)),
		readDone: make(chan struct{}), acks: make(map[int64]chan struct{}),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := conn.readLoop(func(f *frame) error { return c.handle(conn, f) })
		conn.close(closeCode(err), "")
		close(conn.readDone)
	}()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.close(websocket.CloseNormalClosure, "")
		return nil, ErrClosed
	}
	c.conn = conn
	users := c.wanted.list()
	ack, err := c.requestLocked(conn, opSub, users)
	c.mu.Unlock()
	if err == nil {
		err = conn.wait(ctx, ack)
	}
	if err != nil {
		c.drop(conn)
		return nil, err
	}
	if reconnecting || len(users) > 0 {
		signal(c.reconnected)
	}
	return conn, nil
}

// drop closes conn and forgets it.
func (c *StreamClient) drop(conn *clientConn) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	conn.close(websocket.CloseNormalClosure, "")
}

// supervise waits for the connection to end, and reconnects.
func (c *StreamClient) supervise(conn *clientConn) {
	defer c.wg.Done()
	bo := backoff.Backoff{Min: c.o.ReconnectMin, Max: c.o.ReconnectMax}
	for {
		if conn != nil {
			start := time.Now()
			select {
			case <-c.ctx.Done():
				return
			case <-conn.readDone:
			}
			c.drop(conn)
			c.log.Warn("eventbus: origin stream lost; reconnecting")
			if time.Since(start) >= c.o.ReconnectMax {
				bo.Reset() // it had been healthy: start over quickly
			}
		}
		if !bo.Wait(c.ctx) {
			return
		}
		var err error
		if conn, err = c.connect(true); err != nil {
			c.log.Debug("eventbus: origin stream reconnection failed", slog.Any("error", err))
			continue
		}
		c.log.Info("eventbus: origin stream reconnected")
	}
}

// Reconnected receives a value after each re-established subscription.
func (c *StreamClient) Reconnected() <-chan struct{} { return c.reconnected }

// Publish sends msgs to the origin, which relays them to every edge
// subscribed to their users. It returns ErrNotConnected while
// disconnected (an ephemeral event may be lost). Payloads must be JSON.
func (c *StreamClient) Publish(_ context.Context, msgs ...Message) error {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	for i := range msgs {
		p, err := checkPayload(&msgs[i])
		if err != nil {
			return fmt.Errorf("eventbus: publish message %d of %d: %w", i+1, len(msgs), err)
		}
		if err := conn.send(&frame{op: opPub, user: msgs[i].UserID, seq: msgs[i].Seq, payload: p}); err != nil {
			return fmt.Errorf("eventbus: publish: %w", err)
		}
	}
	return nil
}

// Close ends the connection; the origin drops this edge's subscriptions
// (and so its users' presence). No message is delivered once it returns.
func (c *StreamClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	c.cancel()
	if conn != nil {
		conn.close(websocket.CloseNormalClosure, "edge stopping")
	}
	c.wg.Wait()
	return nil
}

// abandon stops the client the way a dying edge stops: the connection
// breaks without a close message.
func (c *StreamClient) abandon() {
	c.mu.Lock()
	if conn := c.conn; conn != nil {
		_ = conn.ws.UnderlyingConn().Close()
	}
	c.mu.Unlock()
	_ = c.Close()
}
