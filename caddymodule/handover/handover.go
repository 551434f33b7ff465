package handover

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// queueSize bounds the connections waiting for the next server to accept
// them; past it a connection is closed as it would have been without the
// handover.
const queueSize = 4096

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Handover is shared by every listener of one address across config
// reloads. When a server shuts down (a reload), Go's http.Server closes
// the keep-alive connections idle between two requests, closes the others
// right after their response (before the client could learn keep-alive
// ended), and drops a request it reads once shutting down: a client that
// sent its next request on such a connection sees it reset. Through a
// Handover such a connection is not closed: it is passed, with the bytes
// the old server read of the next request, to a listener of the same
// address still open (the new config's server), which accepts it as a new
// connection and answers that request. With no other listener open (the
// process exits) connections are closed as before. A connection a handler
// hijacked (a WebSocket) is never passed; nor one whose unanswered bytes
// exceed maxPending. A pipelining client may lose a request whose first
// byte the old server read before answering the previous one.
//
// A listener's connections are handed over from the moment a listener of
// the same address wrapped after it is open (the new config runs: the old
// one is about to stop), not only once it is closed: net/http marks its
// server as shutting down before it closes the listeners, and a request it
// reads in between is dropped unanswered, so the close of that connection
// must already pass it on. Handed-over connections go to the newest open
// listener only, never back to a server that is about to stop.
type Handover struct {
	conns chan passed

	mu      sync.Mutex
	open    []*listener   // listeners wrapped and not closed, oldest first
	changed chan struct{} // closed (and replaced) when open changes

	// Passed counts connections handed to another listener.
	Passed atomic.Int64
}

// New returns an empty Handover.
func New() *Handover {
	return &Handover{conns: make(chan passed, queueSize), changed: make(chan struct{})}
}

// opened adds l to the open listeners, the newest.
func (h *Handover) opened(l *listener) {
	h.mu.Lock()
	h.open = append(h.open, l)
	h.signalLocked()
	h.mu.Unlock()
}

// closed removes l from the open listeners.
func (h *Handover) closed(l *listener) {
	h.mu.Lock()
	h.open = slices.DeleteFunc(h.open, func(o *listener) bool { return o == l })
	h.signalLocked()
	h.mu.Unlock()
}

// signalLocked wakes the Accepts waiting on the set of open listeners.
// Called with mu held.
func (h *Handover) signalLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// retiring reports whether l's connections go to another listener when
// its server closes them: l is closed, or a newer listener is open, and
// some other listener is open to take them.
func (h *Handover) retiring(l *listener) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.Index(h.open, l)
	if i < 0 {
		return len(h.open) > 0
	}
	return i < len(h.open)-1
}

// takes reports whether l is the newest open listener, the one that
// accepts handed-over connections, and returns a channel closed when that
// may change.
func (h *Handover) takes(l *listener) (bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.open) > 0 && h.open[len(h.open)-1] == l, h.changed
}

// passed is a connection on its way to another listener with the bytes
// the old server read of the next request (to be read again first).
type passed struct {
	c   net.Conn
	pre []byte
}

// Destruct closes the connections nobody accepted (caddy.Destructor: the
// last config using the address is gone).
func (h *Handover) Destruct() error {
	for {
		select {
		case p := <-h.conns:
			_ = p.c.Close()
		default:
			return nil
		}
	}
}

// Wrap returns ln accepting its own connections and those handed over by
// stopping listeners of h; every connection it returns can be handed over
// once ln is closed.
func (h *Handover) Wrap(ln net.Listener) net.Listener {
	l := &listener{Listener: ln, h: h, accepted: make(chan accepted), closed: make(chan struct{})}
	h.opened(l)
	go l.acceptLoop()
	return l
}

type accepted struct {
	c   net.Conn
	err error
}

// listener merges its socket's connections with handed-over ones.
type listener struct {
	net.Listener
	h         *Handover
	accepted  chan accepted
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.closed:
			if c != nil { // accepted as the listener closed: the next one takes it
				select {
				case l.h.conns <- passed{c: c}:
				default:
					_ = c.Close()
				}
			}
			return
		}
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Accept returns the next connection of the socket or, while it is the
// newest open listener of its address, one handed over by another.
func (l *listener) Accept() (net.Conn, error) {
	for {
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
		}
		var handed chan passed
		takes, changed := l.h.takes(l)
		if takes {
			handed = l.h.conns
		}
		select {
		case a := <-l.accepted:
			if a.err != nil {
				return nil, a.err
			}
			if _, ok := a.c.(*tls.Conn); ok {
				// net/http needs the *tls.Conn itself (ALPN, HTTP/2, the
				// request's TLS state), and a TLS session cannot change
				// servers with bytes read under it: TLS connections are
				// closed at a reload as they would be without the handover.
				return a.c, nil
			}
			return &conn{Conn: a.c, l: l}, nil
		case p := <-handed:
			if _, ok := p.c.(*tls.Conn); ok { // accepted as its listener closed
				return p.c, nil
			}
			return &conn{Conn: p.c, l: l, pre: p.pre}, nil
		case <-changed: // a listener opened or closed: look again
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

// Close closes the socket; from then on the server's connections are
// handed over instead of closed (if they were not already: see Handover).
func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		l.h.closed(l)
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// maxPending bounds the bytes a connection keeps of a request being read;
// past it (a large body) the connection can no longer change servers.
const maxPending = 64 << 10

// conn keeps the bytes read since its last Write (the beginning of the
// next request, which a stopping server drops unanswered) so that another
// server can read them again.
type conn struct {
	net.Conn
	l *listener

	mu       sync.Mutex
	pre      []byte        // bytes handed over with the connection, read first
	since    []byte        // bytes read since the last Write
	overflow bool          // since overflowed maxPending
	reading  bool          // a Read is blocked
	hijacked bool          // taken over by a handler (SetDeadline): never handed over
	handing  chan struct{} // set by Close while it wakes the blocked Read
	gone     bool          // closed or handed over
}

// NetConn returns the connection this one wraps.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		c.record(b[:n])
		c.mu.Unlock()
		return n, nil
	}
	c.reading = true
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.reading = false
	c.record(b[:n])
	if c.handing != nil {
		// Close woke this Read to take the connection away: whatever it
		// read is kept in since for the next server.
		c.gone = true
		close(c.handing)
		c.handing = nil
	}
	c.mu.Unlock()
	return n, err
}

// record keeps p in since, up to maxPending. Called with mu held.
func (c *conn) record(p []byte) {
	if len(p) == 0 || c.overflow {
		return
	}
	if len(c.since)+len(p) > maxPending {
		c.overflow, c.since = true, nil
		return
	}
	c.since = append(c.since, p...)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.isGone() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.mu.Lock()
		c.since, c.overflow = c.since[:0], false
		c.mu.Unlock()
	}
	return n, err
}

// isGone reports whether the connection was closed or handed over: the
// old server must not touch it any more.
func (c *conn) isGone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// SetReadDeadline sets the read deadline unless the connection is gone.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.isGone() {
		return net.ErrClosed
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline unless the connection is gone.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.isGone() {
		return net.ErrClosed
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline is what net/http calls when a handler hijacks the
// connection (a WebSocket): such a connection is never handed over.
func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.hijacked = true
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// Close closes the connection, or, when its listener is retiring (a newer
// listener of the address is open, or it is closed: its server shuts down
// at a reload) and another listener is open, hands it over there with the
// bytes read since the last response.
// A stopping net/http server closes keep-alive connections idle or right
// after a response, before it could tell the client, and drops a request
// it reads once shutting down; the next server answers it instead. A
// blocked Read of the old server is woken first; from then on the old
// server can neither read nor write the connection.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil
	}
	if c.hijacked || c.overflow || c.handing != nil || !c.l.h.retiring(c.l) {
		c.gone = true
		c.mu.Unlock()
		return c.Conn.Close()
	}
	if c.reading {
		woken := make(chan struct{})
		c.handing = woken
		_ = c.Conn.SetReadDeadline(aLongTimeAgo) // wakes the Read, which needs mu to finish
		c.mu.Unlock()
		<-woken
		c.mu.Lock()
	}
	c.gone = true
	p := passed{c: c.Conn, pre: append([]byte(nil), c.since...)}
	overflow := c.overflow
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Time{})
	if !overflow {
		select {
		case c.l.h.conns <- p:
			c.l.h.Passed.Add(1)
			return nil
		default:
		}
	}
	return c.Conn.Close()
}
