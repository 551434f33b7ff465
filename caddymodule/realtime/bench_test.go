package realtime

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// benchConn is one server connection (hub, queue, writer, reader) on a
// loopback WebSocket, without Caddy, and its client.
type benchConn struct {
	hub    *hub
	conn   *conn
	client *websocket.Conn
}

func newBenchConn(b *testing.B) *benchConn {
	b.Helper()
	bc := &benchConn{}
	var err error
	bc.hub, err = newHub(newMetrics(), zap.NewNop(), func(h eventbus.Handler) (Bus, error) { return newMemBus(&broker{subs: map[*memBus]bool{}}, h), nil })
	if err != nil {
		b.Fatal(err)
	}
	cfg := &connConfig{queueFrames: 1000, queueBytes: 1 << 20, pingInterval: time.Minute, pongTimeout: time.Minute,
		writeTimeout: 5 * time.Second, maxFrame: 64 << 10, rate: 1e6, burst: 1e6, maxInFlight: 8,
		origin: newOriginClient("http://127.0.0.1:1", time.Second, 8), logger: zap.NewNop()}
	ready := make(chan *conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := newConn(bc.hub, cfg, 1, "t", 0, true)
		c.peers.load(map[int64]int64{})
		if err := bc.hub.register(r.Context(), c); err != nil {
			b.Error(err)
			return
		}
		up := websocket.Upgrader{ReadBufferSize: readBufferSize, WriteBufferSize: writeBufferSize, WriteBufferPool: bc.hub.writeBuffers}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.Error(err)
			return
		}
		c.seq.fetching = false // no origin: live from seq 0
		c.start(ws, time.Now().Add(time.Hour))
		ready <- c
	}))
	b.Cleanup(srv.Close)
	bc.client, _, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	bc.conn = <-ready
	b.Cleanup(func() {
		_ = bc.client.Close()
		_ = bc.hub.Destruct()
	})
	return bc
}

// readFrames reads until n frames arrived (messages hold several).
func (bc *benchConn) readFrames(b *testing.B, n int, done chan<- struct{}) {
	got := 0
	for got < n {
		_, msg, err := bc.client.ReadMessage()
		if err != nil {
			b.Error(err)
			break
		}
		got += strings.Count(string(msg), "\n") + 1
	}
	close(done)
}

var benchEvent = []byte(`{"seq":1,"kind":"message","at":"2026-12-07T10:00:00.123456Z","data":{"id":1,"conversation_id":7,"conv_seq":1,"sender_id":2,"body":"hello there, how are you?","client_msg_id":"c-1","created_at":"2026-12-07T10:00:00.123456Z"}}`)

// BenchmarkWriterPath: the cost per frame of queueing a frame and writing
// it (coalesced when the writer is behind) to a loopback WebSocket.
func BenchmarkWriterPath(b *testing.B) {
	bc := newBenchConn(b)
	frame := appendEventFrame(nil, benchEvent)
	done := make(chan struct{})
	go bc.readFrames(b, b.N, done)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for !bc.conn.q.push(outFrame{data: frame, kind: kindOutEvent}) {
			runtime.Gosched()
		}
	}
	<-done
}

// BenchmarkHubDelivery: the cost per event of delivery through the hub:
// the bus handler (decode, frame), the user's shard, the connection's
// sequencer and queue, the writer, the socket.
func BenchmarkHubDelivery(b *testing.B) {
	bc := newBenchConn(b)
	payloads := make([][]byte, 0, 1024)
	done := make(chan struct{})
	go bc.readFrames(b, b.N, done)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq := int64(i + 1)
		if i%1024 == 0 {
			b.StopTimer()
			payloads = payloads[:0]
			for j := range 1024 {
				payloads = append(payloads, []byte(strings.Replace(string(benchEvent), `"seq":1`, `"seq":`+strconv.FormatInt(seq+int64(j), 10), 1)))
			}
			b.StartTimer()
		}
		for bc.conn.q.len() > 900 {
			runtime.Gosched()
		}
		bc.hub.dispatch(eventbus.Message{UserID: 1, Seq: seq, Payload: payloads[i%1024]})
	}
	<-done
}

// TestIdleMemoryPerConnection measures the edge's memory per idle
// connection: N connections through Caddy, held by a client in another
// process (so only the server side is counted here). It runs when
// SPARK_RT_MEMORY_CONNS is set (e.g. 2000) and fails above 32 KiB.
func TestIdleMemoryPerConnection(t *testing.T) {
	if os.Getenv("SPARK_RT_HOLD_ADDR") != "" {
		holdConnections(t)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("SPARK_RT_MEMORY_CONNS"))
	if n <= 0 {
		t.Skip("set SPARK_RT_MEMORY_CONNS=2000 to measure")
	}
	if os.Getenv("SPARK_RT_MEMORY_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	e := startEdge(t, "")
	before := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryPerConnection$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), "SPARK_RT_HOLD_ADDR="+e.addr, "SPARK_RT_HOLD_N="+strconv.Itoa(n), "SPARK_RT_HOLD_TOKEN_SECRET="+testSecret)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "holding") {
	}
	time.Sleep(time.Second)
	if got := e.edgeMetric("spark_websocket_connections_active"); got != float64(n) {
		t.Fatalf("active %v, want %d", got, n)
	}
	after := memNow()
	if path := os.Getenv("SPARK_RT_MEMORY_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	heap := float64(after.heap-before.heap) / float64(n)
	stack := float64(after.stack-before.stack) / float64(n)
	rss := float64(after.rss-before.rss) / float64(n)
	t.Logf("%d idle connections: heap %.1f KiB + stacks %.1f KiB = %.1f KiB per connection (RSS delta %.1f KiB per connection)",
		n, heap/1024, stack/1024, (heap+stack)/1024, rss/1024)
	if heap+stack > 32<<10 {
		t.Fatalf("%.1f KiB per idle connection, want at most 32", (heap+stack)/1024)
	}
}

// memSample is the process's memory: live heap, goroutine stacks, RSS.
type memSample struct{ heap, stack, rss uint64 }

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heap: ms.HeapAlloc, stack: ms.StackInuse}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				s.rss = kb << 10
			}
		}
	}
	return s
}

// holdConnections is the client process of TestIdleMemoryPerConnection:
// it opens N connections (users 1..N) and holds them, answering pings.
func holdConnections(t *testing.T) {
	addr := os.Getenv("SPARK_RT_HOLD_ADDR")
	n, _ := strconv.Atoi(os.Getenv("SPARK_RT_HOLD_N"))
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, NetDial: func(network, a string) (net.Conn, error) {
		return net.DialTimeout(network, a, 10*time.Second)
	}}
	for i := 1; i <= n; i++ {
		hdr := http.Header{"Authorization": {"Bearer " + token(t, int64(i), time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
		ws, _, err := d.Dial("ws://"+addr+"/api/realtime", hdr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("holding", n)
	time.Sleep(10 * time.Minute)
}
