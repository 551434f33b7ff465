package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// WebSockets open: spark_realtime waits at most 2 s (its shutdownGrace)
// from the start of the shutdown; the rest is Caddy's stop, the process's
// exit and a loaded machine's scheduling. It stays below the held
// admission's 10 s (admission_timeout), which the edge used to wait out.
const stopBound = 8 * time.Second

// TestSIGTERMWithManyWebSockets: a `spark run` edge on the repository's
// Caddyfile, before a `spark origin`, holding a few thousand WebSockets
// (SPARK_STOP_CONNS, default 3,000, one user each, clients in this
// process), gets
// SIGTERM while one more connection's admission waits for the origin
// (held by a proxy): it exits within stopBound, every client got close
// 1001 first, and the admission got 503. Before, the WebSockets were
// closed only once the server had drained its requests, with no grace
// period as long as they took: the held admission until admission_timeout
// (10 s).
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
	// The edge reaches the origin through a proxy that can hold the
	// admissions' reads of the event log: an origin too busy to answer.
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: originAddr})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && r.URL.Path == "/api/events" {
			select {
			case held <- struct{}{}:
			default:
			}
			<-r.Context().Done() // until the edge gives up (or is gone)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	home := t.TempDir()
	edgeAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	edge := testutil.StartProcess(t, []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home,
		"SPARK_LISTEN=" + edgeAddr, "SPARK_ORIGIN=" + strings.TrimPrefix(proxy.URL, "http://"), "SPARK_ADMIN=127.0.0.1:" + strconv.Itoa(ports[2]),
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
		codes    sync.Map // close code -> *atomic.Int64
		ended    sync.WaitGroup
		lastEnd  atomic.Int64 // unix ns of the last client's end
		firstEnd atomic.Int64 // unix ns of the first client's end
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
					now := time.Now().UnixNano()
					firstEnd.CompareAndSwap(0, now)
					lastEnd.Store(now)
					return
				}
			}
		}()
	}
	// One more connection in its admission, waiting for the origin.
	hold.Store(true)
	admitted := make(chan *http.Response, 1)
	go func() {
		ws, res, _ := dialer.Dial("ws://"+edgeAddr+"/api/realtime", http.Header{"Authorization": {"Bearer " + tokens[0]}})
		if ws != nil {
			ws.Close()
		}
		admitted <- res
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the extra connection's admission never reached the origin")
	}
	t.Logf("%d WebSockets open, one admission waiting for the origin; SIGTERM", n)

	cpuBefore := cpuTime(edge.Pid())
	cpuLast := cpuBefore
	start := time.Now()
	if err := syscall.Kill(edge.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-edge.Exited():
			break wait
		case <-tick.C:
			if c := cpuTime(edge.Pid()); c > 0 {
				cpuLast = c
			}
		case <-timeout:
			edge.Kill()
			t.Fatalf("the edge did not exit within 30 s of SIGTERM with %d WebSockets open (bound %v)", n, stopBound)
		}
	}
	took := time.Since(start)
	ended.Wait()
	got := map[int]int64{}
	codes.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("exit %v after SIGTERM (%v); clients ended from %v to %v after it; the edge's CPU from SIGTERM to exit ≥ %v; close codes %v",
		took.Round(time.Millisecond), edge.Err(), time.Duration(firstEnd.Load()-start.UnixNano()).Round(time.Millisecond),
		time.Duration(lastEnd.Load()-start.UnixNano()).Round(time.Millisecond), (cpuLast - cpuBefore).Round(time.Millisecond), got)
	if took > stopBound {
		t.Errorf("the edge took %v to exit after SIGTERM with %d WebSockets open, want at most %v", took, n, stopBound)
	}
	if res := <-admitted; res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("the admission in progress at SIGTERM: %v, want 503", res)
	}
	if got[1001] != int64(n) {
		t.Errorf("close codes %v: want all %d clients to get 1001", got, n)
	}
}

// cpuTime is the user plus system CPU time process pid used so far (0 when
// it is gone), from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command (in parentheses, which may hold
	// spaces): state is the 3rd field, utime the 14th, stime the 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
