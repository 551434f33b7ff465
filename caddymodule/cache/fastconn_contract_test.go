package cache

// What fastConn's take-back relies on in net/http's HTTP/1.1 server, pinned
// against a real net/http server on a real socket: if a Go release changes
// any of it, these tests fail (and take-back must be revisited or turned
// off with take_back off).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// connEvent is one call net/http made on a connection.
type connEvent struct {
	what string // "read", "read-done", "write", "deadline-past", "deadline", "set-deadline"
	n    int    // read: len(p); read-done, write: bytes
}

// recordingConn records the calls net/http makes on it. Like fastConn
// while a request is lent, it holds a one-byte Read (net/http's background
// read) until a read deadline in the past aborts it, so a client that
// sends its next request as soon as it has the response cannot make the
// background read return data first (on a bare socket it may, and net/http
// copes; fastConn never lets it).
type recordingConn struct {
	net.Conn
	mu      sync.Mutex
	events  []connEvent
	reading int           // Reads in progress
	abort   chan struct{} // a past read deadline was set
}

func (c *recordingConn) add(e connEvent) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *recordingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.events = append(c.events, connEvent{what: "read", n: len(p)})
	c.reading++
	c.mu.Unlock()
	if len(p) == 1 {
		// The background read: held until its abort. If none comes within
		// 5 s the Read goes on, and the contract checks below fail.
		select {
		case <-c.abort:
			c.mu.Lock()
			c.reading--
			c.events = append(c.events, connEvent{what: "read-done", n: 0})
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		case <-time.After(5 * time.Second):
		}
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading--
	c.events = append(c.events, connEvent{what: "read-done", n: n})
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.add(connEvent{what: "write", n: len(p)})
	return c.Conn.Write(p)
}

func (c *recordingConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.add(connEvent{what: "deadline-past"})
		select {
		case c.abort <- struct{}{}:
		default:
		}
	} else {
		c.add(connEvent{what: "deadline"})
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *recordingConn) SetDeadline(t time.Time) error {
	c.add(connEvent{what: "set-deadline"})
	return c.Conn.SetDeadline(t)
}

// snapshot returns the events so far and the Reads in progress.
func (c *recordingConn) snapshot() ([]connEvent, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]connEvent(nil), c.events...), c.reading
}

// recordingListener hands out recordingConns.
type recordingListener struct {
	net.Listener
	conns chan *recordingConn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c, abort: make(chan struct{}, 1)}
	l.conns <- rc
	return rc, nil
}

// serveRecorded runs a net/http server with h and returns its address and
// the connections it accepts.
func serveRecorded(t *testing.T, h http.HandlerFunc) (string, chan *recordingConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: ln, conns: make(chan *recordingConn, 4)}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(rl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), rl.conns
}

// TestNetHTTPConnContract pins what take-back assumes of net/http's server
// for a GET without a body on a keep-alive connection:
//  1. it reads exactly the request's bytes: its next Read is the one-byte
//     background read, started before the handler runs and running while
//     it does;
//  2. after the handler, every byte of the response is written, then a
//     read deadline in the past aborts the background read, which has to
//     return before any other Read;
//  3. its next Read (the next request) comes after the abort.
func TestNetHTTPConnContract(t *testing.T) {
	const req = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
	var rc *recordingConn
	inHandler := make(chan []connEvent, 2)
	addr, conns := serveRecorded(t, func(w http.ResponseWriter, r *http.Request) {
		// Wait (bounded) until the background read is in progress.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ev, reading := rc.snapshot()
			if reading == 1 || time.Now().After(deadline) {
				inHandler <- ev
				break
			}
			time.Sleep(time.Millisecond)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, strings.Repeat("b", 10000)) // more than net/http's buffers
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rc = <-conns
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(b) != 10000 {
			t.Fatalf("response %d: %d bytes", i, len(b))
		}
		during := <-inHandler
		// 1: the request's bytes, then a one-byte read still running.
		var got int
		last := -1
		for k, e := range during {
			if e.what == "read-done" {
				got += e.n
				last = k
			}
		}
		if i == 0 && got != len(req) || i == 1 && got != 2*len(req) {
			t.Fatalf("request %d: net/http had read %d bytes when its handler ran, want exactly the requests' %d", i, got, (i+1)*len(req))
		}
		var after []connEvent
		for _, e := range during[last+1:] {
			if e.what == "read" || e.what == "read-done" {
				after = append(after, e)
			}
		}
		if len(after) != 1 || after[0] != (connEvent{what: "read", n: 1}) {
			t.Fatalf("request %d: reads after the request while the handler runs %v, want one background read of 1 byte", i, after)
		}
	}
	// 2 and 3, over both requests: the background read returns only after
	// a past deadline, which follows the response's last write; no other
	// Read starts while it runs. The client may have the second response
	// before net/http aborted its background read: wait (bounded) for the
	// read of a third request.
	var ev []connEvent
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		var reading int
		ev, reading = rc.snapshot()
		if reading == 1 && ev[len(ev)-1].what == "read" && ev[len(ev)-1].n > 1 {
			break
		}
	}
	var bgOpen, abortSeen bool
	var lastWrite, responses int
	for k, e := range ev {
		switch e.what {
		case "write":
			if bgOpen && abortSeen {
				t.Fatalf("event %d: a write after the abort of the background read: %v", k, ev)
			}
			lastWrite = k
		case "deadline-past":
			if bgOpen {
				abortSeen = true
				if lastWrite == 0 {
					t.Fatalf("event %d: abort before any response was written: %v", k, ev)
				}
			}
		case "read":
			if bgOpen {
				t.Fatalf("event %d: a Read while the background read runs: %v", k, ev)
			}
			if e.n == 1 {
				bgOpen, abortSeen = true, false
			}
		case "read-done":
			if bgOpen {
				if !abortSeen {
					t.Fatalf("event %d: the background read returned before its abort: %v", k, ev)
				}
				bgOpen = false
				responses++
			}
		case "set-deadline":
			t.Fatalf("event %d: net/http called SetDeadline without a hijack", k)
		}
	}
	if responses != 2 {
		t.Fatalf("%d background reads ended by an abort, want 2: %v", responses, ev)
	}
}

// TestNetHTTPHijackCallsSetDeadline pins what tells fastConn that a handler
// hijacked the connection: net/http aborts the background read, then calls
// SetDeadline.
func TestNetHTTPHijackCallsSetDeadline(t *testing.T) {
	addr, conns := serveRecorded(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_ = brw.Flush()
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rc := <-conns
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	ev, _ := rc.snapshot()
	var seq []string
	for _, e := range ev {
		if e.what == "deadline-past" || e.what == "set-deadline" {
			seq = append(seq, e.what)
		}
	}
	if fmt.Sprint(seq) != "[deadline-past set-deadline]" {
		t.Fatalf("hijack: %v, want the abort then SetDeadline (all events %v)", seq, ev)
	}
}
