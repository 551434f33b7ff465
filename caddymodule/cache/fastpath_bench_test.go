package cache

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/fastreq"
)

// benchFastReq is a hit request as a phone's HTTP/1.1 client sends it.
const benchFastReq = "GET /api/users/42/profile?b=2&a=1 HTTP/1.1\r\nHost: api.spark.test\r\nUser-Agent: Spark/3.1 (iPhone; iOS 18.1)\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"

// newFastBench fills the bench cache and makes the response's hot copy
// (as the pipeline does on its first hit), and returns the fast path over
// it.
func newFastBench(tb testing.TB) (*fastPath, *pooled) {
	tb.Helper()
	c, _, origin := newBenchCache(tb)
	r := benchRequest("/api/users/42/profile?b=2&a=1")
	for i := 0; i < 2; i++ {
		if err := c.ServeHTTP(httptest.NewRecorder(), r, origin); err != nil {
			tb.Fatal(err)
		}
	}
	p := &pooled{name: "bench", store: c.store, metrics: c.metrics, hot: c.hot}
	p.cache.Store(c)
	return newFastPath(fastPathOptions{name: "bench", paths: []string{"/api/*"}, idle: time.Minute, takeBack: true}), p
}

// benchConn is a connection on which n copies of req arrive; what is
// written is counted, and checked once.
type benchConn struct {
	net.Conn
	req     []byte
	n       int
	pending []byte
	written int
	first   []byte
}

func (c *benchConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.n == 0 {
			return 0, io.EOF
		}
		c.n--
		c.pending = c.req
	}
	k := copy(p, c.pending)
	c.pending = c.pending[k:]
	return k, nil
}

func (c *benchConn) Write(p []byte) (int, error) {
	if c.first == nil {
		c.first = append([]byte(nil), p...)
	}
	c.written += len(p)
	return len(p), nil
}

func (c *benchConn) SetReadDeadline(time.Time) error { return nil }

// TestFastPathHitAllocatesNothing: parsing, the lookup and the response of
// a fast-path hit make no allocation (the per-second memos aside).
func TestFastPathHitAllocatesNothing(t *testing.T) {
	f, p := newFastBench(t)
	b := []byte(benchFastReq)
	out := make([]byte, 0, fastOutSize)
	var req fastreq.Request
	hit := func() {
		if _, res := fastreq.Parse(b, &req); res != fastreq.Complete {
			t.Fatal("request not parsed")
		}
		if _, _, ok := f.respond(p, &req, out[:0]); !ok {
			t.Fatal("the fast path did not answer")
		}
	}
	hit()
	if a := testing.AllocsPerRun(200, hit); a > 0.05 {
		t.Fatalf("a fast-path hit allocates %v times", a)
	}
}

// BenchmarkFastPathHit is L1 hits through a fast-path connection: parse,
// lookup in the hot copies, one write of header and body. Compare with
// BenchmarkHitPath (the handler alone, without net/http or Caddy).
func BenchmarkFastPathHit(b *testing.B) {
	f, p := newFastBench(b)
	conn := &benchConn{req: []byte(benchFastReq), n: b.N}
	fc := &fastConn{Conn: conn, f: f, p: p}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.ResetTimer()
	buf := make([]byte, 4096)
	if n, err := fc.Read(buf); n != 0 || err != io.EOF {
		b.Fatalf("Read = %d, %v", n, err)
	}
	b.StopTimer()
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(conn.first)), nil)
	if err != nil || res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit") {
		b.Fatalf("first response %q: %v", conn.first, err)
	}
	if conn.written < b.N*len(benchBody) {
		b.Fatalf("wrote %d bytes for %d hits", conn.written, b.N)
	}
}
