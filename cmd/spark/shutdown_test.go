package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// stopBound is how long an edge may take from SIGTERM to exit with its
// WebSockets open: spark_realtime's documented bound (2 s, its
// shutdownGrace) plus the rest of Caddy's stop and a loaded machine's
// scheduling.
const stopBound = 5 * time.Second

// TestSIGTERMWithManyWebSockets: a `spark run` edge on the repository's
// Caddyfile, before a `spark origin`, holding a few thousand WebSockets
// (SPARK_STOP_CONNS, default 3,000, one user each, clients in this
// process), gets
// SIGTERM: it exits within stopBound and every client got close 1001
// first.
func TestSIGTERMWithManyWebSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two spark processes and thousands of connections")
	}
	n := 3000
	if v := os.Getenv("SPARK_STOP_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("SPARK_STOP_CONNS=%q", v)
		}
	}
	bin := testutil.SparkBinary(t)
	const jwtSecret = "spark-stop-test-jwt-secret-0123456789abcdef"
	const events = "spark-stop-test-events-token-0123456789abcdef"
	ports := testutil.FreePorts(t, 3)
	originAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	org := testutil.StartProcess(t, []string{"SPARK_JWT_SECRET=" + jwtSecret, "SPARK_EVENTS_TOKEN=" + events},
		bin, "origin", "--listen", originAddr, "--push=false")
	testutil.WaitHTTP(t, "http://"+originAddr+"/healthz", 60*time.Second, org.Exited())

	home := t.TempDir()
	edgeAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	edge := testutil.StartProcess(t, []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home,
		"SPARK_LISTEN=" + edgeAddr, "SPARK_ORIGIN=" + originAddr, "SPARK_ADMIN=127.0.0.1:" + strconv.Itoa(ports[2]),
		"SPARK_JWT_SECRET=" + jwtSecret, "SPARK_EVENTS_TOKEN=" + events, "SPARK_PURGE_TOKEN=" + events},
		bin, "run", "--config", filepath.Join(testutil.ModuleRoot(t), "Caddyfile"), "--adapter", "caddyfile")
	testutil.WaitHTTP(t, "http://"+edgeAddr+"/healthz", 60*time.Second, edge.Exited())

	// The connections: one user each (each its own bus subscription).
	tokens := make([]string, n)
	for i := range tokens {
		tok, err := origin.IssueToken(jwtSecret, int64(i+1), time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	var (
		codes   sync.Map // close code -> *atomic.Int64
		ended   sync.WaitGroup
		lastEnd atomic.Int64 // unix ns of the last client's end
	)
	count := func(code int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	dialer := websocket.Dialer{Subprotocols: []string{"spark.v1"}, HandshakeTimeout: 30 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	conns := make([]*websocket.Conn, n)
	var dialErr atomic.Value
	var dialing sync.WaitGroup
	next := atomic.Int64{}
	for range 32 {
		dialing.Add(1)
		go func() {
			defer dialing.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				for attempt := 0; ; attempt++ {
					ws, res, err := dialer.Dial("ws://"+edgeAddr+"/api/realtime", http.Header{"Authorization": {"Bearer " + tokens[i%len(tokens)]}})
					if err == nil {
						conns[i] = ws
						break
					}
					if attempt < 5 && res != nil && res.StatusCode == http.StatusServiceUnavailable {
						time.Sleep(time.Second) // admission refused under load: Retry-After
						continue
					}
					dialErr.Store(err)
					return
				}
			}
		}()
	}
	dialing.Wait()
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dial: %v", err)
	}
	for _, ws := range conns {
		ended.Add(1)
		go func() {
			defer ended.Done()
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					code := -1 // no close frame
					if ce, ok := err.(*websocket.CloseError); ok {
						code = ce.Code
					}
					count(code)
					lastEnd.Store(time.Now().UnixNano())
					return
				}
			}
		}()
	}
	t.Logf("%d WebSockets open; SIGTERM", n)

	start := time.Now()
	if err := syscall.Kill(edge.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("SPARK_STOP_DUMP_AFTER"); d != "" { // TEMP
		dd, _ := time.ParseDuration(d)
		time.Sleep(dd)
		_ = syscall.Kill(edge.Pid(), syscall.SIGABRT)
		<-edge.Exited()
		_ = os.WriteFile("/tmp/rtops/dump.txt", []byte(edge.Output()), 0o644)
	}
	select {
	case <-edge.Exited():
	case <-time.After(30 * time.Second):
		edge.Kill()
		t.Fatalf("the edge did not exit within 30 s of SIGTERM with %d WebSockets open (bound %v)", n, stopBound)
	}
	took := time.Since(start)
	ended.Wait()
	got := map[int]int64{}
	codes.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("exit %v after SIGTERM (%v); last client ended %v after it; close codes %v",
		took.Round(time.Millisecond), edge.Err(), time.Duration(lastEnd.Load()-start.UnixNano()).Round(time.Millisecond), got)
	if took > stopBound {
		t.Errorf("the edge took %v to exit after SIGTERM with %d WebSockets open, want at most %v", took, n, stopBound)
	}
	if got[1001] != int64(n) {
		t.Errorf("close codes %v: want all %d clients to get 1001", got, n)
	}
}
