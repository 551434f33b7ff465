package cache

// Take-back (fastconn.go) through a real Caddy: after Caddy answered a
// plain request on a connection, the fast path answers it again; through
// a real net/http server: a handler that hijacks a lent request keeps the
// connection.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spark-edge/spark/caddymodule/internal/fastreq"
)

// fastClient is one keep-alive connection to the edge.
type fastClient struct {
	t    *testing.T
	e    *edge
	conn net.Conn
	br   *bufio.Reader
}

func dialFast(t *testing.T, e *edge) *fastClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.site, "http://"), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &fastClient{t: t, e: e, conn: conn, br: bufio.NewReader(conn)}
}

// send writes requests in one write.
func (c *fastClient) send(reqs ...string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, strings.Join(reqs, "")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads the response to a request of method.
func (c *fastClient) read(method string) *resp {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	res.Body.Close()
	return &resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

// step is a request on a connection and what must answer it.
type step struct {
	method, target string
	hdr            []string
	fast           bool   // the fast path answers it
	status         int    // expected status
	body           string // expected body
}

// hit is a GET the fast path answers; miss one Caddy answers.
func hit(target string) step {
	return step{method: "GET", target: target, fast: true, status: 200, body: "body of " + target}
}
func miss(target string) step {
	return step{method: "GET", target: target, status: 200, body: "body of " + target}
}

// check fails unless r answers s.
func (s step) check(t *testing.T, i int, r *resp) {
	t.Helper()
	if r.status != s.status || r.body != s.body {
		t.Fatalf("response %d (%s %s): %d %q, want %d %q", i, s.method, s.target, r.status, r.body, s.status, s.body)
	}
	if s.fast && s.status == http.StatusOK && !r.isHit() {
		t.Fatalf("response %d (%s %s): Cache-Status %q, want a hit", i, s.method, s.target, r.cacheStatus())
	}
}

// TestFastPathTakesBack: miss, hit, miss, hit… on one connection, one
// request at a time: each is answered right, the hits by the fast path
// although Caddy answered the request before.
func TestFastPathTakesBack(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	warm(t, e, "/pub/b")
	steps := []step{
		miss("/pub/m1"), hit("/pub/a"),
		miss("/pub/m2"), hit("/pub/a"), hit("/pub/b"),
		miss("/other"), // a path the fast path does not serve
		{method: "HEAD", target: "/pub/a", fast: true, status: 200},
		{method: "HEAD", target: "/pub/m3", status: 200}, // a HEAD miss
		{method: "GET", target: "/pub/b", hdr: []string{"If-None-Match", `"v1"`}, fast: true, status: 304},
		{method: "GET", target: "/pub/m4", hdr: []string{"If-None-Match", `"v1"`}, status: 200, body: "body of /pub/m4"},
		hit("/pub/a"),
		{method: "GET", target: "/pub/m1", hdr: []string{"If-None-Match", `"v1"`}, status: 304}, // Caddy's 304
		hit("/pub/b"),
	}
	oneByOne(t, dialFast(t, e), steps)
}

// TestFastPathTakeBackOff: with take_back off, a connection is Caddy's for
// good after its first miss.
func TestFastPathTakeBackOff(t *testing.T) {
	e := startFastPathEdgeWith(t, "", "take_back off")
	warm(t, e, "/pub/a")
	oneByOne(t, dialFast(t, e), []step{hit("/pub/a"), miss("/pub/m1"), miss("/pub/a"), miss("/pub/a")})
}

// oneByOne sends the steps on c one at a time, each after the response to
// the one before, and checks each response and who answered it.
func oneByOne(t *testing.T, c *fastClient, steps []step) {
	t.Helper()
	for i, s := range steps {
		before := fastCount(t)
		c.send(request(c.e, s.method, s.target, s.hdr...))
		s.check(t, i, c.read(s.method))
		if got := fastCount(t) - before; s.fast && got != 1 || !s.fast && got != 0 {
			t.Fatalf("response %d (%s %s): the fast path answered %v, want fast=%v", i, s.method, s.target, got, s.fast)
		}
	}
}

// TestFastPathTakeBackPipelined: hits and misses sent together on one
// connection are answered in order, every hit by the fast path.
func TestFastPathTakeBackPipelined(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	warm(t, e, "/pub/b")
	for round, steps := range [][]step{
		{hit("/pub/a"), miss("/pub/p1"), hit("/pub/a"), hit("/pub/b"), miss("/pub/p2"), miss("/pub/p3"), hit("/pub/b")},
		{miss("/pub/p4"), {method: "HEAD", target: "/pub/a", fast: true, status: 200}, {method: "HEAD", target: "/pub/p5", status: 200},
			{method: "GET", target: "/pub/a", hdr: []string{"If-None-Match", `"v1"`}, fast: true, status: 304}, miss("/other"), hit("/pub/a")},
		// Hits after a request the fast path cannot take (a field it does
		// not know): the connection is Caddy's for good.
		{hit("/pub/a"), miss("/pub/p6"), {method: "GET", target: "/pub/a", hdr: []string{"X-Pipeline", "1"}, status: 200, body: "body of /pub/a"},
			{method: "GET", target: "/pub/b", status: 200, body: "body of /pub/b"}, miss("/pub/p7")},
	} {
		var reqs []string
		fast := 0
		for _, s := range steps {
			reqs = append(reqs, request(e, s.method, s.target, s.hdr...))
			if s.fast {
				fast++
			}
		}
		before := fastCount(t)
		c := dialFast(t, e)
		c.send(reqs...)
		for i, s := range steps {
			s.check(t, i, c.read(s.method))
		}
		if got := fastCount(t) - before; got != float64(fast) {
			t.Fatalf("round %d: the fast path answered %v, want %d", round, got, fast)
		}
	}
	// Many rounds of hits and misses in one write, more than the fast
	// path's 4 KiB buffer.
	var steps []step
	var reqs []string
	for i := 0; i < 60; i++ {
		s := hit("/pub/a")
		if i%7 == 3 {
			s = miss("/pub/many-" + string(rune('a'+i%26)) + strings.Repeat("x", i))
		}
		steps = append(steps, s)
		reqs = append(reqs, request(e, s.method, s.target, s.hdr...))
	}
	c := dialFast(t, e)
	c.send(reqs...)
	for i, s := range steps {
		s.check(t, i, c.read(s.method))
	}
}

// TestFastPathTakeBackAfterBodyAndUpgrade: a request with a body, and a
// WebSocket upgrade (hijacked by reverse_proxy), leave the connection to
// Caddy: hit requests after them are Caddy's, or the tunnel's bytes.
func TestFastPathTakeBackAfterBodyAndUpgrade(t *testing.T) {
	e := startFastPathEdge(t, "")
	warm(t, e, "/pub/a")
	// A body: the connection stays Caddy's.
	before := fastCount(t)
	c := dialFast(t, e)
	host := strings.TrimPrefix(e.site, "http://")
	c.send("POST /pub/post HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 5\r\n\r\nhello", request(e, "GET", "/pub/a"), request(e, "GET", "/pub/a"))
	if r := c.read("POST"); r.status != 200 || r.body != "body of /pub/post" {
		t.Fatalf("POST: %d %q", r.status, r.body)
	}
	for i := 0; i < 2; i++ {
		if r := c.read("GET"); r.status != 200 || r.body != "body of /pub/a" {
			t.Fatalf("GET after POST: %d %q", r.status, r.body)
		}
	}
	if fastCount(t) != before {
		t.Fatal("the fast path answered on a connection after a request with a body")
	}
	// A miss, then an upgrade: the tunnel carries hit-looking bytes to the
	// origin untouched.
	tunnelDone := make(chan struct{})
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "body of "+r.URL.RequestURI())
			return
		}
		defer close(tunnelDone)
		echoOnce(w, "websocket", len(request(e, "GET", "/pub/a")))
	})
	c = dialFast(t, e)
	c.send(request(e, "GET", "/pub/u1"))
	if r := c.read("GET"); r.body != "body of /pub/u1" {
		t.Fatalf("miss before the upgrade: %q", r.body)
	}
	c.send("GET /pub/ws HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if r, err := http.ReadResponse(c.br, nil); err != nil || r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", r, err)
	}
	before = fastCount(t)
	hitReq := request(e, "GET", "/pub/a")
	c.send(hitReq)
	echo := make([]byte, len(hitReq))
	if _, err := io.ReadFull(c.br, echo); err != nil || string(echo) != hitReq {
		t.Fatalf("through the tunnel: %q, %v; want the request echoed", echo, err)
	}
	if fastCount(t) != before {
		t.Fatal("the fast path answered inside a WebSocket tunnel")
	}
	// The origin ends the tunnel after one echo; wait until the edge has
	// closed the client's side too, so the tunnel is over before the edge
	// stops: Caddy v2.11.9's reverse proxy writes a close frame on tunnels
	// still open at Cleanup without synchronisation with their copiers (a
	// data race -race reports in Caddy's code).
	select {
	case <-tunnelDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the origin's side of the tunnel did not end")
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c.br); err != nil {
		t.Fatalf("the edge did not close the tunnel after the origin did: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the proxy's deferred clean-up after the close
}

// echoOnce answers an upgrade with 101, echoes n bytes and closes.
func echoOnce(w http.ResponseWriter, protocol string, n int) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + protocol + "\r\nConnection: Upgrade\r\n\r\n")
	_ = brw.Flush()
	buf := make([]byte, n)
	if _, err := io.ReadFull(brw, buf); err == nil {
		_, _ = conn.Write(buf)
	}
}

// TestFastConnHijackedLentRequest: a handler that hijacks a plain GET the
// fast path lent keeps the connection: hit requests after it reach the
// handler as bytes.
func TestFastConnHijackedLentRequest(t *testing.T) {
	p, c, br := serveFastConn(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hijack" {
			_, _ = io.WriteString(w, "pipeline")
			return
		}
		hijackEcho(w, "x")
	})
	before := testutil.ToFloat64(p.metrics.fastPath)
	// A hit, a miss (lent), a hit (taken back), then the hijack.
	hitReq := benchFastReq
	if _, res := fastreq.Parse([]byte(hitReq), new(fastreq.Request)); res != fastreq.Complete {
		t.Fatal("hit request not plain")
	}
	missReq := "GET /nope HTTP/1.1\r\nHost: api.spark.test\r\n\r\n"
	for i, rq := range []string{hitReq, missReq, hitReq} {
		if _, err := io.WriteString(c, rq); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if got := testutil.ToFloat64(p.metrics.fastPath) - before; got != 2 {
		t.Fatalf("fast answers %v, want 2 (before and after the miss)", got)
	}
	if _, err := io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: api.spark.test\r\n\r\n"+hitReq); err != nil {
		t.Fatal(err)
	}
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("hijack: %v, %v", res, err)
	}
	echo := make([]byte, len(hitReq))
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != hitReq {
		t.Fatalf("after the hijack: %q, %v; want the request echoed", echo, err)
	}
	if got := testutil.ToFloat64(p.metrics.fastPath) - before; got != 2 {
		t.Fatalf("the fast path answered on a hijacked connection (%v answers)", got)
	}
}

// TestFastConnNextRequestDuringHandler: a request that arrives while the
// handler of a lent one still runs (its response already flushed) waits
// in the fast path's buffer — net/http's background read does not get it
// — and the fast path answers it once net/http is done.
func TestFastConnNextRequestDuringHandler(t *testing.T) {
	handlerDone := make(chan struct{}, 1)
	p, c, br := serveFastConn(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pipeline")
		_ = http.NewResponseController(w).Flush()
		time.Sleep(300 * time.Millisecond) // the client sends its next request meanwhile
		handlerDone <- struct{}{}
	})
	before := testutil.ToFloat64(p.metrics.fastPath)
	for round := 0; round < 3; round++ {
		if _, err := io.WriteString(c, "GET /nope HTTP/1.1\r\nHost: api.spark.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("round %d: miss: %v", round, err)
		}
		if b, _ := io.ReadAll(res.Body); string(b) != "pipeline" {
			t.Fatalf("round %d: miss answered %q", round, b)
		}
		if _, err := io.WriteString(c, benchFastReq); err != nil { // while the handler sleeps
			t.Fatal(err)
		}
		res, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("round %d: hit: %v", round, err)
		}
		b, _ := io.ReadAll(res.Body)
		select {
		case <-handlerDone:
		default:
			t.Fatalf("round %d: the hit was answered before net/http finished the miss", round)
		}
		if res.StatusCode != http.StatusOK || !bytes.Equal(b, benchBody) {
			t.Fatalf("round %d: hit %d %q", round, res.StatusCode, b)
		}
		if got := testutil.ToFloat64(p.metrics.fastPath) - before; got != float64(round+1) {
			t.Fatalf("round %d: %v fast answers, want %d", round, got, round+1)
		}
	}
}

// serveFastConn runs a net/http server with h behind fastConns over the
// bench cache (newFastBench: benchFastReq is a hit) and returns the cache
// and a connection to it.
func serveFastConn(t *testing.T, h http.HandlerFunc) (*pooled, net.Conn, *bufio.Reader) {
	t.Helper()
	f, p := newFastBench(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() {
		_ = srv.Serve(&wrapListener{Listener: ln, wrap: func(c net.Conn) net.Conn { return &fastConn{Conn: c, f: f, p: p} }})
	}()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return p, c, bufio.NewReader(c)
}

// hijackEcho hijacks the connection, answers 101 Switching Protocols to
// protocol and echoes what follows.
func hijackEcho(w http.ResponseWriter, protocol string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + protocol + "\r\nConnection: Upgrade\r\n\r\n")
	_ = brw.Flush()
	_, _ = io.Copy(conn, brw)
}

// wrapListener wraps the connections it accepts.
type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l *wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}
