package realtime

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"

	"github.com/gorilla/websocket"
)

// TestMalformedFramesGetErrorFrames: each malformed frame gets an error
// frame with its code, and the connection stays.
func TestMalformedFramesGetErrorFrames(t *testing.T) {
	e := startEdge(t, "")
	c := e.connect(1, "since=0")
	for _, tc := range []struct{ frame, code, ref string }{
		{`not json`, codeBadFrame, ""},
		{`[]`, codeBadFrame, ""},
		{`{"conversation_id":1}`, codeBadFrame, ""},
		{`{"type":"dance"}`, codeUnknownType, "dance"},
		{`{"type":"send","conversation_id":1,"body":"x"}`, codeBadFrame, typeSend},
		{`{"type":"send","conversation_id":"1","body":"x","client_msg_id":"c1"}`, codeBadFrame, ""},
		{`{"type":"send","conversation_id":0,"body":"x","client_msg_id":"c2"}`, codeBadFrame, "c2"},
		{`{"type":"read","conversation_id":1}`, codeBadFrame, typeRead},
		{`{"type":"typing"}`, codeBadFrame, typeTyping},
		{`{"type":"ack","seq":-1}`, codeBadFrame, typeAck},
		{`{"type":"ack","seq":5}`, codeBadAck, typeAck},
		{`{"type":"send","conversation_id":99,"body":"x","client_msg_id":"c3"}`, codeNotMember, "c3"},
		{`{"type":"typing","conversation_id":99}`, codeNotMember, typeTyping},
	} {
		c.send(tc.frame)
		errs, _ := c.until(typeError, 1, wait)
		if errs[0].Code != tc.code || errs[0].Ref != tc.ref || errs[0].Detail == "" {
			t.Errorf("%s: got %+v, want code %s ref %q", tc.frame, errs[0], tc.code, tc.ref)
		}
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ack","seq":0}`)); err != nil {
		t.Fatal(err)
	}
	if errs, _ := c.until(typeError, 1, wait); errs[0].Code != codeBadFrame {
		t.Fatalf("binary: %+v", errs[0])
	}
	c.send(`{"type":"ack","seq":0}`) // still open, and a good frame is fine
	c.send(`{"type":"nope"}`)
	if errs, _ := c.until(typeError, 1, wait); errs[0].Code != codeUnknownType {
		t.Fatalf("after ack: %+v", errs[0])
	}
}

// TestCloseCodesForBadMessages: invalid UTF-8 closes with 1007, a message
// over max_frame with 1009.
func TestCloseCodesForBadMessages(t *testing.T) {
	e := startEdge(t, "max_frame 1KiB")
	c := e.connect(1, "")
	c.send("{\"type\":\"typing\",\"x\":\"\xff\xfe\"}")
	if code, _ := c.closeCode(wait); code != closeInvalidUTF8 {
		t.Fatalf("bad UTF-8: close %d", code)
	}
	c = e.connect(1, "")
	c.send(`{"type":"ack","seq":0,"pad":"` + strings.Repeat("x", 2048) + `"}`)
	if code, _ := c.closeCode(wait); code != closeTooBig {
		t.Fatalf("oversize: close %d", code)
	}
}

// TestFloodGetsErrorsThenPolicyClose: frames above the rate get
// rate_limited error frames; a client that keeps on is closed with 1008.
func TestFloodGetsErrorsThenPolicyClose(t *testing.T) {
	e := startEdge(t, "rate 5 5")
	c := e.connect(1, "")
	go func() {
		for range 100 {
			if c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ack","seq":0}`)) != nil {
				return
			}
		}
	}()
	limited := 0
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, msg, err := c.ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			if ce.Code != closePolicy {
				t.Fatalf("close %d, want 1008", ce.Code)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fs, _ := decodeServerMessage(msg)
		for _, f := range fs {
			if f.Code == codeRateLimited {
				limited++
			}
		}
	}
	if limited < 1 {
		t.Fatalf("%d rate_limited error frames before the close", limited)
	}
}

// TestSlowConsumer: a client that stops reading is closed with 1013 and a
// retry hint once its queue is full; resuming from its last event loses
// nothing.
func TestSlowConsumer(t *testing.T) {
	e := startEdge(t, "queue 8 64KiB\nwrite_timeout 20s")
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	// The client's receive buffer is fixed: left to the kernel's
	// autotuning, loopback buffers grow to tens of MB and absorb whatever
	// the test publishes before the edge's queue can fill. Not smaller than
	// a few loopback MSS (64 KiB): below that the receiver never advertises
	// a window worth an update once the client reads again, and the edge
	// waits on zero-window probes whose backoff reaches seconds.
	small := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(512 << 10)
		}
		return conn, err
	}}
	hdr := http.Header{"Authorization": {"Bearer " + token(t, 1, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	c, res, err := e.dialWith(small, "since=0", hdr)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	c.until(typeEvent, 1, wait) // the resume is over: events now come live
	pad := strings.Repeat("p", 8<<10)
	// Publish until the edge gives up on the client (its queue of 8 full
	// behind a write the client does not read); the deadline only guards
	// against a hang.
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; e.edgeMetric("spark_websocket_slow_consumer_disconnects_total") == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no slow-consumer disconnect after %d events", i)
		}
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1, "body": pad, "i": i})
	}
	if got := e.edgeMetric("spark_websocket_slow_consumer_disconnects_total"); got != 1 {
		t.Fatalf("%v slow-consumer disconnects, want 1", got)
	}
	last := int64(1)
	for {
		// A deadline per read: draining megabytes of socket buffers may take
		// longer than one wait on a loaded machine.
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		_, msg, err := c.ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			if ce.Code != closeTryAgainLater || !strings.Contains(ce.Text, "retry after") {
				t.Fatalf("close %d %q", ce.Code, ce.Text)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fs, err := decodeServerMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range seqs(t, fs) {
			if s != last+1 {
				t.Fatalf("seq %d after %d", s, last)
			}
			last = s
		}
	}
	r := e.connect(1, fmt.Sprintf("since=%d", last))
	rest := e.origin.lastSeq(1) - last
	evs, _ := r.until(typeEvent, int(rest), wait)
	if got := seqs(t, evs); got[0] != last+1 || got[len(got)-1] != e.origin.lastSeq(1) {
		t.Fatalf("resumed %d..%d, want %d..%d", got[0], got[len(got)-1], last+1, e.origin.lastSeq(1))
	}
}

// TestTokenExpiryCloses4001: the connection ends with 4001 at the token's
// exp.
func TestTokenExpiryCloses4001(t *testing.T) {
	e := startEdge(t, "leeway 1ns")
	hdr := map[string][]string{"Authorization": {"Bearer " + token(t, 1, 1500*time.Millisecond)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	c, _, err := e.dial("", hdr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code, reason := c.closeCode(wait); code != closeTokenExpired || reason != tokenExpiredReason {
		t.Fatalf("close %d %q", code, reason)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %s", d)
	}
}

// TestPingPong: the server pings; a client that answers stays, one that
// does not is dropped after the pong timeout.
func TestPingPong(t *testing.T) {
	e := startEdge(t, "ping 100ms 200ms")
	alive := e.connect(1, "")
	pings := make(chan struct{}, 100)
	alive.ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return alive.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := alive.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	dead := e.connect(2, "")
	dead.ws.SetPingHandler(func(string) error { return nil }) // never answers
	if _, _, err := dead.ws.ReadMessage(); err == nil {
		t.Fatal("a client that never answers pings was not dropped")
	}
	// The answering client keeps being pinged well past the pong timeout
	// that dropped the other one (liveness bound: a loaded machine may be
	// slow, never wrong).
	for i := 0; i < 3; i++ {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatalf("the answering client got %d pings, then none for 10 s", i)
		}
	}
	alive.send(`{"type":"ack","seq":0}`)
	testutil.Eventually(t, 10*time.Second, "the dropped client to leave the active gauge", func() bool {
		return e.edgeMetric("spark_websocket_connections_active") == 1
	})
}
