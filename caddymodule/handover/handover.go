package handover

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// queueSize bounds the connections waiting for the next server to accept
// them; past it a connection is closed as it would have been without the
// handover.
const queueSize = 4096

// orphanAfter is how long a connection whose Close was deferred (see
// conn.Close) may stay open without writing before it is closed anyway.
const orphanAfter = time.Minute

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Handover is shared by every listener of one address across config
// reloads. When a server shuts down (a reload), Go's http.Server closes
// the keep-alive connections that are idle between two requests; a client
// that had just sent its next request on one then sees the connection
// reset, and the request fails. Through a Handover, such a connection is
// not closed: it is passed to a listener of the same address that is still
// open (the new config's server), which accepts it as a new connection and
// reads the waiting request. Only connections with no request byte read
// since the last response are passed on, so the new server starts at a
// request boundary. With no other listener open (the process exits) they
// are closed as before.
type Handover struct {
	conns chan net.Conn
	open  atomic.Int64 // listeners wrapped and not closed
	// Passed counts connections handed to another listener.
	Passed atomic.Int64
}

// New returns an empty Handover.
func New() *Handover { return &Handover{conns: make(chan net.Conn, queueSize)} }

// Destruct closes the connections nobody accepted (caddy.Destructor: the
// last config using the address is gone).
func (h *Handover) Destruct() error {
	for {
		select {
		case c := <-h.conns:
			_ = c.Close()
		default:
			return nil
		}
	}
}

// Wrap returns ln accepting its own connections and those handed over by
// stopping listeners of h; every connection it returns can be handed over
// once ln is closed.
func (h *Handover) Wrap(ln net.Listener) net.Listener {
	h.open.Add(1)
	l := &listener{Listener: ln, h: h, accepted: make(chan accepted), closed: make(chan struct{})}
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
	stopping  atomic.Bool // closed: its connections may be handed over
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.closed:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Accept returns the next connection of the socket or of a stopping
// listener of the same address.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case a := <-l.accepted:
		if a.err != nil {
			return nil, a.err
		}
		return &conn{Conn: a.c, l: l, fresh: true}, nil
	case c := <-l.h.conns:
		return &conn{Conn: c, l: l, fresh: true}, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close closes the socket; from then on the server's idle connections are
// handed over instead of closed.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		l.stopping.Store(true)
		l.h.open.Add(-1)
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// conn tracks whether the server is waiting for a request on it with no
// byte of one read, the only state in which it can change servers.
type conn struct {
	net.Conn
	l *listener

	mu       sync.Mutex
	reading  bool          // a Read is blocked
	fresh    bool          // no byte read since the last Write
	hijacked bool          // taken over by a handler (SetDeadline): never handed over
	handing  chan struct{} // set by Close while it wakes the blocked Read
	lastN    int           // bytes the woken Read returned
	writes   int64         // Writes that wrote something
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
	c.reading = true
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.reading = false
	if n > 0 {
		c.fresh = false
	}
	if c.handing != nil {
		// Close woke this Read. With bytes read, the server keeps the
		// connection: its deadline is cleared before the next Read.
		c.lastN = n
		if n > 0 {
			_ = c.Conn.SetReadDeadline(time.Time{})
		} else {
			c.gone = true // it moves: the old server must not touch it any more
		}
		close(c.handing)
		c.handing = nil
	}
	c.mu.Unlock()
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if c.isGone() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.mu.Lock()
		c.fresh = true
		c.writes++
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

// Close closes the connection, or, when its listener is stopping and no
// byte of a next request was read since the last response, hands it to
// another open listener of the address. That covers both ways a stopping
// net/http server closes a keep-alive connection: idle, while it waits for
// the next request (Shutdown; the wait is woken first), and right after a
// response, before it could tell the client (keep-alives end with the
// shutdown).
func (c *conn) Close() error {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil
	}
	if !c.fresh && !c.hijacked && c.l.stopping.Load() {
		// Closed by Shutdown while the server reads a request it has begun
		// to receive (net/http counts the connection idle until the whole
		// header is parsed): the server goes on, answers it and closes the
		// connection itself. Should this Close have come from the server
		// giving up on that request instead, nothing follows it: the
		// connection is closed once it has written nothing for orphanAfter.
		writes := c.writes
		c.mu.Unlock()
		time.AfterFunc(orphanAfter, func() {
			c.mu.Lock()
			orphan := !c.gone && c.writes == writes
			if orphan {
				c.gone = true
			}
			c.mu.Unlock()
			if orphan {
				_ = c.Conn.Close()
			}
		})
		return nil
	}
	if !c.fresh || c.hijacked || c.handing != nil || !c.l.stopping.Load() || c.l.h.open.Load() == 0 {
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
		if c.lastN > 0 {
			// A request began to arrive as the server closed: the old
			// server has its first bytes and answers it; it closes the
			// connection itself afterwards (keep-alives are off while it
			// shuts down).
			c.mu.Unlock()
			return nil
		}
	}
	c.gone = true // the old server must not touch it any more
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Time{})
	select {
	case c.l.h.conns <- c.Conn:
		c.l.h.Passed.Add(1)
		return nil
	default:
		return c.Conn.Close()
	}
}
