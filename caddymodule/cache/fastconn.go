package cache

import (
	"crypto/tls"
	"io"
	"net"
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

// fastConn is a connection whose leading requests the fast path may
// answer. net/http reads it as ever: Read parses what arrives, writes the
// answers to the requests the fast path can answer itself, and at the
// first it cannot (or any bytes it cannot parse) hands that request's
// bytes, and everything after them, to net/http. From then on the
// connection is the pipeline's for the rest of its life, so responses
// stay in request order (pipelined requests included).
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
	// handed: net/http has the connection.
	handed bool
}

// fastOutSize is the response buffer: responses up to it go out in one
// write of one buffer, longer ones in one writev of header and body.
const fastOutSize = 16 << 10

// Read answers what the fast path can and returns the rest to net/http.
func (c *fastConn) Read(p []byte) (int, error) {
	for !c.handed {
		if c.buf == nil {
			c.buf = make([]byte, fastreq.MaxRequest)
		}
		if c.r < c.w {
			n, res := fastreq.Parse(c.buf[c.r:c.w], &c.req)
			switch res {
			case fastreq.Complete:
				served, err := c.answer()
				if err != nil {
					return 0, err
				}
				if served {
					c.r += n
					continue
				}
				c.handed = true
				continue
			case fastreq.Unusual:
				c.handed = true
				continue
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
			c.handed = true // what was read goes to net/http, then the error
			if c.r == c.w {
				return 0, err
			}
		}
	}
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	c.buf, c.out = nil, nil
	return c.Conn.Read(p)
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
