package handover

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

// recordingListener is a listener with the connections its server made
// idle (between two requests).
type recordingListener struct {
	net.Listener
	conns chan *conn
}

// serve runs an http.Server answering name on a listener wrapped by h; the
// channel returned receives each connection as it becomes idle.
func serve(t *testing.T, h *Handover, name string) (*http.Server, string, chan *conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := recordingListener{Listener: h.Wrap(ln), conns: make(chan *conn, 16)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	}), ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			rl.conns <- c.(*conn)
		}
	}}
	go func() { _ = srv.Serve(rl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ln.Addr().String(), rl.conns
}

// get sends a GET on c and returns the response's body and whether the
// server announced it closes the connection.
func get(t *testing.T, c net.Conn, br *bufio.Reader) (string, bool) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Close
}

// dial opens a connection to addr with a reader of its responses.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// waitReading waits until the server reads c: called once c is idle, it
// is the read of the next request.
func waitReading(t *testing.T, c *conn) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, "the server waiting for the next request", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reading
	})
}

// A keep-alive connection idle on a server that shuts down (a reload) is
// not closed: the next request on it is answered by the other server of
// the same Handover, and the connection stays usable.
func TestIdleConnectionMovesToTheNextServer(t *testing.T) {
	h := New()
	oldSrv, addr, oldConns := serve(t, h, "old")
	_, _, newConns := serve(t, h, "new")

	c, br := dial(t, addr)
	if body, _ := get(t, c, br); body != "old" {
		t.Fatalf("first answer %q", body)
	}
	waitReading(t, <-oldConns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := oldSrv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i := range 3 {
		if body, closing := get(t, c, br); body != "new" || closing {
			t.Fatalf("request %d after the shutdown: %q (closing %v), want new on a kept connection", i, body, closing)
		}
	}
	if n := h.Passed.Load(); n != 1 {
		t.Fatalf("passed %d connections, want 1", n)
	}
	select {
	case <-newConns:
	default:
		t.Fatal("the new server made no connection idle")
	}
}

// net/http marks a server as shutting down before it closes its
// listeners, and drops a request it reads in between: the connection it
// then closes, under a listener not closed yet, goes to the newer listener
// of the address, which answers that request (before, it was closed and
// the client read EOF: the reload flake of TestReloadKeepsKeepAliveConnections).
func TestRequestDroppedBeforeTheListenerClosesMovesToTheNewerServer(t *testing.T) {
	h := New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	oldLn := h.Wrap(raw)
	defer oldLn.Close()
	_, _, _ = serve(t, h, "new")

	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := oldLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// The old server reads the request, sees it is shutting down and
	// closes the connection; its listener is still open.
	buf := make([]byte, len(req))
	if _, err := io.ReadFull(sc, buf); err != nil {
		t.Fatal(err)
	}
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v (the dropped request was not handed over)", err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); string(b) != "new" {
		t.Fatalf("answer %q, want new", b)
	}
	if n := h.Passed.Load(); n != 1 {
		t.Fatalf("passed %d connections, want 1", n)
	}
}

// A listener that is the newest of its address closes its connections as
// without the handover, and an older listener never accepts a
// handed-over connection.
func TestOnlyTheNewestListenerTakesConnections(t *testing.T) {
	h := New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	only := h.Wrap(raw)
	defer only.Close()
	if h.retiring(only.(*listener)) {
		t.Fatal("the only listener retires its connections")
	}
	if takes, _ := h.takes(only.(*listener)); !takes {
		t.Fatal("the only listener takes no handed-over connection")
	}
	raw2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	newer := h.Wrap(raw2)
	if !h.retiring(only.(*listener)) {
		t.Fatal("a listener with a newer one open does not retire its connections")
	}
	if takes, _ := h.takes(only.(*listener)); takes {
		t.Fatal("an older listener takes handed-over connections")
	}
	// The newer config failed to start: the older listener is the newest again.
	_ = newer.Close()
	if h.retiring(only.(*listener)) {
		t.Fatal("the listener left alone still retires its connections")
	}
	if takes, _ := h.takes(only.(*listener)); !takes {
		t.Fatal("the listener left alone takes no handed-over connection")
	}
}

// With no other listener open (the process exits), an idle connection is
// closed as without the handover.
func TestIdleConnectionClosedWhenNoServerIsLeft(t *testing.T) {
	h := New()
	srv, addr, conns := serve(t, h, "only")
	c, br := dial(t, addr)
	get(t, c, br)
	waitReading(t, <-conns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after the last server shut down")
	}
	if n := h.Passed.Load(); n != 0 {
		t.Fatalf("passed %d", n)
	}
}

// A hijacked connection (a WebSocket) closed while its reader waits is
// closed, never handed over, even while its server shuts down.
func TestHijackedConnectionIsNeverPassed(t *testing.T) {
	h := New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := h.Wrap(ln)
	_, _, _ = serve(t, h, "other")
	got := make(chan error, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			got <- err
			return
		}
		_ = c.SetDeadline(time.Time{}) // as net/http's Hijack does
		go func() { _, _ = c.Read(make([]byte, 1)) }()
		waitReading(t, c.(*conn))
		_ = wl.Close()
		got <- c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("hijacked connection after close: %v, want EOF", err)
	}
	if n := h.Passed.Load(); n != 0 {
		t.Fatalf("passed %d hijacked connections", n)
	}
}

// TestTLSConnectionsPassThrough: behind Caddy's TLS listener the wrapper
// returns the *tls.Conn itself, which net/http needs for ALPN (HTTP/2)
// and the request's TLS state.
func TestTLSConnectionsPassThrough(t *testing.T) {
	h := New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := h.Wrap(tls.NewListener(raw, &tls.Config{}))
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tls.Conn); !ok {
		t.Fatalf("accepted a %T, want the *tls.Conn", c)
	}
}
