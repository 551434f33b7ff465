package cache

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/fastreq"
)

// fastListener wraps the connections a server accepts in fastConns.
type fastListener struct {
	net.Listener
	f *fastPath
}

// Accept returns the next connection, wrapped unless it is TLS (net/http
// needs the *tls.Conn itself for ALPN and HTTP/2) or the cache is not
// loaded (once, or under two configs).
func (l *fastListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := conn.(*tls.Conn); ok {
		return conn, nil
	}
	p := l.f.resolve()
	if p == nil {
		return conn, nil
	}
	return &fastConn{Conn: conn, f: l.f, p: p}, nil
}

// connMode is who answers a fastConn's requests.
type connMode uint8

const (
	// modeFast: Read parses what arrives and answers what it can.
	modeFast connMode = iota
	// modeLent: net/http has one plain request (buf[r:lentEnd] is what
	// it has not read of it yet) and answers it; the bytes after it are
	// kept until net/http has finished its response (take-back).
	modeLent
	// modeHanded: net/http has the connection for the rest of its life;
	// Read returns what is buffered, then the socket's bytes.
	modeHanded
)

// bgState is where net/http's background read of a lent request is.
type bgState uint8

const (
	bgNone bgState = iota
	bgRunning
	bgDone
)

// fastConn is a connection whose requests the fast path may answer.
// net/http reads it as ever: Read parses what arrives, writes the answers
// to the requests the fast path can answer itself, and returns to net/http
// the first it cannot.
//
// A plain request (fastreq Complete: GET or HEAD, HTTP/1.1, no body, no
// Expect, Upgrade or Connection other than keep-alive) is lent: net/http
// reads exactly its bytes and nothing after them, answers it, and the
// fast path takes the connection back at net/http's first read after the
// response (take-back, below). Anything else (fastreq Unusual: a body,
// HTTP/1.0, h2c, an unknown field…), a read error, a hijack or a read
// net/http was not expected to make hands the connection to net/http for
// the rest of its life: Read returns what is buffered, in order, then the
// socket's bytes.
//
// Take-back rests on what net/http's server does with an HTTP/1.1
// request without a body (pinned by TestNetHTTPConnContract):
//   - once it has read the request it starts a background read of one
//     byte on the connection, which runs while the handler does;
//   - after the handler it flushes the whole response (finishRequest),
//     then aborts that read by setting a read deadline in the past
//     (abortPendingRead), waits for it to return and only then reads the
//     next request on the serving goroutine;
//   - a handler that hijacks the connection calls SetDeadline; net/http
//     itself never does.
//
// So while a request is lent, the first Read after its bytes is the
// background read: it keeps whatever arrives (the next requests) in buf
// and returns nothing of it, and it returns only at the abort, with a
// timeout error net/http ignores. A later Read, once the abort was seen,
// is net/http reading its next request with nothing of it buffered and
// its response written: the connection is the fast path's again. Between
// the two, net/http writes nothing. Responses stay in request order,
// pipelined requests included.
type fastConn struct {
	net.Conn
	f *fastPath
	p *pooled
	// buf[r:w] is read and not yet answered or handed over.
	buf  []byte
	r, w int
	out  []byte
	bufs net.Buffers
	req  fastreq.Request
	// lentEnd: while lent, buf[r:lentEnd] is the rest of the lent request.
	lentEnd int

	// mu guards what net/http's goroutines (the serving one, the
	// background read, a Shutdown closing the connection) share.
	mu   sync.Mutex
	cond sync.Cond // on mu: the background read waits for the abort
	mode connMode
	bg   bgState
	// aborted: a read deadline in the past was set while lent.
	aborted bool
	// closed: Close was called.
	closed bool
}

// fastOutSize is the response buffer: responses up to it go out in one
// write of one buffer, longer ones in one writev of header and body.
const fastOutSize = 16 << 10

// Read answers what the fast path can and returns the rest to net/http.
func (c *fastConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	mode := c.mode
	if mode == modeLent && c.r >= c.lentEnd {
		return c.readAfterLent(p) // unlocks
	}
	c.mu.Unlock()
	switch mode {
	case modeLent:
		n := copy(p, c.buf[c.r:c.lentEnd])
		c.r += n
		return n, nil
	case modeHanded:
		return c.readHanded(p)
	}
	return c.readFast(p)
}

// readFast parses and answers requests until one is net/http's.
func (c *fastConn) readFast(p []byte) (int, error) {
	if c.buf == nil {
		c.buf = make([]byte, fastreq.MaxRequest)
	}
	for {
		if c.r < c.w {
			n, res := fastreq.Parse(c.buf[c.r:c.w], &c.req)
			switch res {
			case fastreq.Complete:
				served, err := c.answer()
				if err != nil {
					c.setMode(modeHanded)
					return 0, err
				}
				if served {
					c.r += n
					continue
				}
				if c.f.takeBack {
					c.lend(c.r + n)
					return c.Read(p)
				}
				c.setMode(modeHanded)
				return c.readHanded(p)
			case fastreq.Unusual:
				c.setMode(modeHanded)
				return c.readHanded(p)
			}
			if c.r > 0 { // NeedMore: keep the start at the buffer's start
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			}
		} else {
			c.r, c.w = 0, 0
		}
		n, err := c.Conn.Read(c.buf[c.w:])
		c.w += n
		if err != nil {
			// What was read goes to net/http, then the error.
			c.setMode(modeHanded)
			if c.r == c.w {
				return 0, err
			}
			return c.readHanded(p)
		}
	}
}

// lend gives net/http the request in buf[r:end].
func (c *fastConn) lend(end int) {
	c.mu.Lock()
	c.mode, c.lentEnd, c.bg, c.aborted = modeLent, end, bgNone, false
	c.mu.Unlock()
}

// readAfterLent is a Read once net/http has the whole lent request: its
// background read, or its read of the next request (take-back). Called
// with mu held; unlocks it.
func (c *fastConn) readAfterLent(p []byte) (int, error) {
	switch {
	case c.bg == bgNone && len(p) == 1:
		c.bg = bgRunning
		if c.aborted || c.closed {
			// Started after its abort: over at once, as the socket
			// read would be with the deadline in the past.
			c.bg = bgDone
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Unlock()
		return c.backgroundRead()
	case c.bg == bgDone && c.aborted && !c.closed:
		// net/http wrote its response, its background read is over and
		// it reads the next request: the connection is ours again.
		c.mode, c.bg, c.aborted = modeFast, bgNone, false
		c.mu.Unlock()
		return c.readFast(p)
	}
	// A read net/http was not expected to make: the connection is its
	// own from here (nothing was written since the lent request).
	c.mode = modeHanded
	c.mu.Unlock()
	return c.readHanded(p)
}

// backgroundRead is net/http's background read during the handler of a
// lent request: the next bytes are kept in buf, not returned, and it
// returns at net/http's abort with a timeout error (which net/http
// ignores), or with the socket's error if the client went away first
// (which net/http takes as the client gone, as without the fast path).
func (c *fastConn) backgroundRead() (int, error) {
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	c.lentEnd = 0
	var n int
	var err error
	if c.r == c.w { // only while nothing is pending, as net/http would
		n, err = c.Conn.Read(c.buf[c.w:])
		c.w += n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && !c.aborted && n == 0 {
		c.bg, c.mode = bgDone, modeHanded
		return 0, err
	}
	// Bytes arrived (net/http's own background read would stop at the
	// first; an error with them recurs at the next read of the socket),
	// or the abort came: wait for the abort.
	if n > 0 {
		err = nil
	}
	if c.cond.L == nil {
		c.cond.L = &c.mu
	}
	for !c.aborted && !c.closed && c.mode == modeLent {
		c.cond.Wait()
	}
	c.bg = bgDone
	if err == nil {
		err = os.ErrDeadlineExceeded
	}
	return 0, err
}

// readHanded returns what is buffered, then reads the socket.
func (c *fastConn) readHanded(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	c.buf, c.out = nil, nil
	return c.Conn.Read(p)
}

// setMode sets the mode and wakes a waiting background read.
func (c *fastConn) setMode(m connMode) {
	c.mu.Lock()
	c.mode = m
	c.wakeLocked()
	c.mu.Unlock()
}

// wakeLocked wakes a background read waiting for its abort.
func (c *fastConn) wakeLocked() {
	if c.cond.L != nil {
		c.cond.Broadcast()
	}
}

// SetReadDeadline sets the read deadline; one in the past while a request
// is lent is net/http aborting its background read after the response
// (or a handler ending reads, which the socket read would see the same
// way): it is recorded before the socket sees it.
func (c *fastConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.mu.Lock()
		if c.mode == modeLent {
			c.aborted = true
			c.wakeLocked()
		}
		c.mu.Unlock()
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is what net/http calls when a handler hijacks the
// connection (a WebSocket): it is the handler's for good.
func (c *fastConn) SetDeadline(t time.Time) error {
	c.setMode(modeHanded)
	return c.Conn.SetDeadline(t)
}

// Close closes the connection and wakes a waiting background read.
func (c *fastConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.wakeLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}

// answer writes the response to c.req if the fast path can give it.
func (c *fastConn) answer() (bool, error) {
	if c.out == nil {
		c.out = make([]byte, 0, fastOutSize)
	}
	head, body, ok := c.f.respond(c.p, &c.req, c.out[:0])
	if !ok {
		return false, nil
	}
	var err error
	if len(head)+len(body) <= cap(c.out) {
		out := append(head, body...)
		_, err = c.Conn.Write(out)
		c.out = out[:0]
	} else {
		c.bufs = append(c.bufs[:0], head, body)
		_, err = c.bufs.WriteTo(c.Conn)
		if cap(head) > cap(c.out) {
			c.out = head[:0]
		}
	}
	if err != nil {
		return false, err
	}
	if c.f.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.f.idle))
	}
	return true, nil
}

// ReadFrom lets net/http's responses use the connection's own ReadFrom
// (sendfile, splice).
func (c *fastConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// CloseWrite half-closes the connection, as net/http does before closing
// one with unread request bytes.
func (c *fastConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
