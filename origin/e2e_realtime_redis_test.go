package origin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// TestRealtimeTwoEdgesRedisOutage runs realtime chat as production does:
// the origin on PostGIS publishing to Redis, two edges on the repository's
// Caddyfile with `events redis`, two matched users on different edges.
// Messages reach the peer across edges; Redis is killed while both are
// connected — the connections stay, the messages sent meanwhile are stored
// and acknowledged, and reach the peer once Redis is back (the edge catches
// up from the origin's log); finally the peer reconnects to the other edge
// with since=<last ack> and gets everything after it. Every message arrives
// exactly once, in order.
func TestRealtimeTwoEdgesRedisOutage(t *testing.T) {
	ctx := context.Background()
	const schema = "test_e2e_realtime_redis"
	st := pgtest.Open(t, schema)
	var users [2]int64
	for i := range users {
		id, err := st.CreateUser(ctx, store.NewUser{
			Profile:  store.ProfileUpdate{Name: fmt.Sprintf("RT %d", i), Age: 30, Gender: "woman", Active: true},
			Location: &store.Point{Lat: 52.52, Lng: 13.40},
		})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = id
	}
	if _, err := st.Swipe(ctx, users[0], users[1], store.Like); err != nil {
		t.Fatal(err)
	}
	res, err := st.Swipe(ctx, users[1], users[0], store.Like)
	if err != nil || res.Match == nil {
		t.Fatalf("mutual like made no match: %+v %v", res, err)
	}
	conv := res.Match.ConversationID

	redis := testredis.Start(t)
	const secret = "e2e-realtime-redis-jwt-secret-0123456789"
	originAddr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.SchemaURL(t, schema),
		JWTSecret: secret, PhotoDir: t.TempDir(),
		Events: origin.EventsConfig{Redis: []string{redis.Addr()}, RedisPrefix: "e2ert:"}})

	caddyfile := caddyfileWithRealtimeRedis(t)
	bin := sparkBinary(t)
	var edges [2]string
	for i := range edges {
		ports := freePorts(t, 2)
		edges[i] = startEdgeProcess(t, bin, caddyfile, ports[0], t.TempDir(),
			"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+originAddr, "SPARK_ADMIN=127.0.0.1:"+ports[1],
			"SPARK_JWT_SECRET="+secret, "SPARK_REDIS="+redis.Addr())
	}
	token := func(id int64) string {
		s, err := origin.IssueToken(secret, id, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	sender := dialRealtime(t, edges[0], token(users[0]), "")
	receiver := newInbox(t, dialRealtime(t, edges[1], token(users[1]), "since=0"))
	send := func(n int) {
		t.Helper()
		id := fmt.Sprintf("m%d", n)
		f := fmt.Sprintf(`{"type":"send","conversation_id":%d,"body":"message %d","client_msg_id":%q}`, conv, n, id)
		if err := sender.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
		readFrame(t, sender, "sent", func(b []byte) bool { return bytes.Contains(b, []byte(`"client_msg_id":"`+id+`"`)) })
	}

	// Across edges through Redis.
	for n := 1; n <= 5; n++ {
		send(n)
	}
	receiver.waitFor(t, 5, 15*time.Second)

	// Redis dies while both are connected: sends are still stored and
	// acknowledged (the origin's publish fails, the log has them).
	redis.Stop()
	for n := 6; n <= 10; n++ {
		send(n)
	}
	redis.Start()
	receiver.waitFor(t, 10, 60*time.Second)
	send(11)
	receiver.waitFor(t, 11, 15*time.Second)

	// The peer moves to the other edge, resuming after what it acked.
	acked := receiver.seqOf(t, 8)
	receiver.close()
	moved := newInbox(t, dialRealtime(t, edges[0], token(users[1]), fmt.Sprintf("since=%d", acked)))
	send(12)
	moved.waitFor(t, 12, 15*time.Second)
	if got := moved.messages(); !slices.Equal(got, []int{9, 10, 11, 12}) {
		t.Fatalf("after resuming since the ack of message 8 the peer got %v, want [9 10 11 12]", got)
	}
	if got := receiver.messages(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Fatalf("the peer's first connection got %v, want 1..11 once each, in order", got)
	}
}

// caddyfileWithRealtimeRedis writes the repository's Caddyfile with
// spark_realtime's events taken from Redis (SPARK_REDIS, prefix e2ert:).
func caddyfileWithRealtimeRedis(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	const line = "events origin {env.SPARK_EVENTS_TOKEN}"
	if !bytes.Contains(b, []byte(line)) {
		t.Fatalf("the repository's Caddyfile has no %q line", line)
	}
	b = bytes.Replace(b, []byte(line), []byte("events redis {$SPARK_REDIS} {\n\t\t\t\tkey_prefix e2ert:\n\t\t\t}"), 1)
	p := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dialRealtime opens a spark.v1 WebSocket to the edge with the token.
func dialRealtime(t *testing.T, edgeBase, token, query string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(edgeBase, "http") + "/api/realtime"
	if query != "" {
		url += "?" + query
	}
	d := websocket.Dialer{Subprotocols: []string{"spark.v1"}, HandshakeTimeout: 10 * time.Second}
	// An edge whose bus is reconnecting (Redis just came back, the
	// subscriber in its backoff) answers 503 with Retry-After: retry as a
	// client does, for a while.
	deadline := time.Now().Add(20 * time.Second)
	c, res, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	for err != nil && res != nil && res.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		c, res, err = d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	}
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("WebSocket to %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inbox reads a connection's message events in the background, acking
// each, and records the message numbers ("message N" bodies) and seqs.
type inbox struct {
	c      *websocket.Conn
	mu     sync.Mutex
	nums   []int
	seqs   map[int]int64 // message number -> event seq
	closed chan struct{}
	err    error
}

func newInbox(t *testing.T, c *websocket.Conn) *inbox {
	in := &inbox{c: c, seqs: map[int]int64{}, closed: make(chan struct{})}
	go in.read()
	t.Cleanup(in.close)
	return in
}

func (in *inbox) read() {
	defer close(in.closed)
	for {
		_, msg, err := in.c.ReadMessage()
		if err != nil {
			in.mu.Lock()
			in.err = err
			in.mu.Unlock()
			return
		}
		for _, f := range bytes.Split(msg, []byte("\n")) {
			var fr struct {
				Type  string `json:"type"`
				Event struct {
					Seq  int64  `json:"seq"`
					Kind string `json:"kind"`
					Data struct {
						Body string `json:"body"`
					} `json:"data"`
				} `json:"event"`
			}
			if json.Unmarshal(f, &fr) != nil || fr.Type != "event" {
				continue
			}
			var n int
			if fr.Event.Kind == "message" {
				if _, err := fmt.Sscanf(fr.Event.Data.Body, "message %d", &n); err == nil {
					in.mu.Lock()
					in.nums = append(in.nums, n)
					in.seqs[n] = fr.Event.Seq
					in.mu.Unlock()
				}
			}
			_ = in.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"ack","seq":%d}`, fr.Event.Seq)))
		}
	}
}

// waitFor waits until message n has arrived; the connection must stay
// open meanwhile.
func (in *inbox) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		in.mu.Lock()
		_, ok := in.seqs[n]
		err, got := in.err, append([]int(nil), in.nums...)
		in.mu.Unlock()
		switch {
		case ok:
			return
		case err != nil:
			t.Fatalf("the connection ended before message %d arrived (got %v): %v", n, got, err)
		case time.Now().After(deadline):
			t.Fatalf("message %d did not arrive within %s (got %v)", n, within, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *inbox) seqOf(t *testing.T, n int) int64 {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.seqs[n]
	if !ok {
		t.Fatalf("message %d never arrived", n)
	}
	return s
}

func (in *inbox) messages() []int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]int(nil), in.nums...)
}

func (in *inbox) close() {
	_ = in.c.Close()
	<-in.closed
}
