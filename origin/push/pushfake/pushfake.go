// Package pushfake runs local stand-ins for Apple's APNs and Google's FCM
// (with its OAuth token endpoint) that speak their wire formats and check
// what they receive: the request line, headers, provider token claims and
// JSON bodies. They are the only mocks the push tests use, because the
// real services cannot be reached from tests. Each can be told to answer
// an error status or to be down (connections refused).
package pushfake

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Received is one notification a fake accepted.
type Received struct {
	// Token is the device token it was sent to.
	Token string
	// Headers are the request's headers (APNs: apns-*; FCM: none of note).
	Priority string // APNs apns-priority or FCM android.priority
	// PushType is APNs apns-push-type ("alert", "background"); FCM: "notification" or "data".
	PushType string
	// CollapseID is apns-collapse-id or android.collapse_key.
	CollapseID string
	// Expiration is apns-expiration (Unix seconds) or now + android.ttl.
	Expiration time.Time
	// Title and Body are the alert's text ("" when quiet).
	Title, Body string
	// Data is the app's payload.
	Data map[string]string
	// At is when it arrived.
	At time.Time
}

// Failure makes a fake answer an error instead of accepting.
type Failure struct {
	// Status is the HTTP status to answer (429, 500, 503…).
	Status int
	// Reason is the error reason in the body.
	Reason string
	// RetryAfter, when set, is sent as Retry-After (seconds).
	RetryAfter int
	// Times is how many requests get it (0: until cleared).
	Times int
}

// control is what both fakes share: recorded notifications, programmed
// failures, dead tokens, the down switch.
type control struct {
	mu       sync.Mutex
	received []Received
	failure  *Failure
	failed   int
	dead     map[string]bool
	rejected []string // why requests were refused as malformed
	down     bool
	conns    map[net.Conn]struct{}
}

func newControl() *control {
	return &control{dead: make(map[string]bool), conns: make(map[net.Conn]struct{})}
}

// Received returns what was accepted so far.
func (c *control) Received() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.received...)
}

// Count is how many notifications were accepted.
func (c *control) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.received)
}

// Rejected returns why malformed requests were refused (the checks on
// headers, token claims and bodies); a correct client leaves it empty.
func (c *control) Rejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rejected...)
}

// Fail makes the next requests answer f (Times of them, or all until
// Fail(nil)).
func (c *control) Fail(f *Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failure, c.failed = f, 0
}

// Unregister makes token dead: sends to it get the service's "gone" answer.
func (c *control) Unregister(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead[token] = true
}

// SetDown takes the fake off the network (true: open connections are
// closed and new ones are closed at once) or back on.
func (c *control) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	var open []net.Conn
	if down {
		for conn := range c.conns {
			open = append(open, conn)
		}
	}
	c.mu.Unlock()
	for _, conn := range open {
		_ = conn.Close()
	}
}

// failureFor returns the failure to answer now, if any (counting it).
func (c *control) failureFor() *Failure {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.failure
	if f == nil {
		return nil
	}
	c.failed++
	if f.Times > 0 && c.failed >= f.Times {
		c.failure = nil
	}
	return f
}

func (c *control) reject(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejected = append(c.rejected, why)
}

func (c *control) accept(r Received) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.At = time.Now()
	c.received = append(c.received, r)
}

func (c *control) isDead(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead[token]
}

// server is what each fake runs: a TLS test server speaking HTTP/2, on a
// listener its control can take off the network.
type server struct {
	*control
	srv *httptest.Server
}

// startServer starts h on a new server.
func startServer(h http.Handler) server {
	c := newControl()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = listener{Listener: srv.Listener, c: c}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	return server{control: c, srv: srv}
}

// URL is the fake's root (the provider's APNsOptions.URL or
// FCMOptions.URL).
func (s server) URL() string { return s.srv.URL }

// Client trusts the fake's certificate and speaks HTTP/2.
func (s server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s server) Close() { s.srv.Close() }

// listener closes connections while the fake is down and tracks the
// open ones so SetDown can cut them.
type listener struct {
	net.Listener
	c *control
}

func (l listener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.c.mu.Lock()
		down := l.c.down
		if !down {
			l.c.conns[conn] = struct{}{}
		}
		l.c.mu.Unlock()
		if down {
			_ = conn.Close()
			continue
		}
		return trackedConn{Conn: conn, c: l.c}, nil
	}
}

type trackedConn struct {
	net.Conn
	c *control
}

func (t trackedConn) Close() error {
	t.c.mu.Lock()
	delete(t.c.conns, t.Conn)
	t.c.mu.Unlock()
	return t.Conn.Close()
}
