package realtime

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// TestReloadKeepsConnections: a reload with changed options keeps the
// open connections (they keep delivering, with their old options); new
// connections get the new options.
func TestReloadKeepsConnections(t *testing.T) {
	e := startEdge(t, "max_frame 1KiB")
	old := e.connect(1, "since=0")
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	old.until(typeEvent, 1, wait)

	e.reload("max_frame 4KiB")
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	if evs, _ := old.until(typeEvent, 1, wait); seqs(t, evs)[0] != 2 {
		t.Fatalf("after reload: %s", evs[0].Event)
	}
	if n := e.broker.subscribed(1); n != 1 {
		t.Fatalf("user subscribed by %d buses after the reload, want 1 (one hub)", n)
	}
	fresh := e.connect(1, "since=2")
	big := `{"type":"ack","seq":0,"pad":"` + strings.Repeat("x", 2048) + `"}`
	fresh.send(big)
	fresh.send(`{"type":"nope"}`)
	if errs, _ := fresh.until(typeError, 1, wait); errs[0].Code != codeUnknownType {
		t.Fatalf("new connection: %+v", errs[0])
	}
	old.send(big)
	if code, _ := old.closeCode(wait); code != closeTooBig {
		t.Fatalf("old connection kept max_frame 1KiB? close %d", code)
	}
}

// TestStopClosesWith1001: stopping the edge closes every connection with
// 1001 and unsubscribes the bus.
func TestStopClosesWith1001(t *testing.T) {
	e := startEdge(t, "")
	a := e.connect(1, "")
	b := e.connect(2, "")
	done := make(chan error, 1)
	go func() { done <- caddy.Stop() }()
	for _, c := range []*client{a, b} {
		if code, reason := c.closeCode(wait); code != closeGoingAway || reason != goingAwayReason {
			t.Fatalf("close %d %q", code, reason)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.broker.subscribed(1)+e.broker.subscribed(2) != 0 {
		t.Fatal("subscriptions left after stop")
	}
	// caddytest's cleanup stops Caddy again: load an empty config.
	if err := caddy.Load([]byte(`{"admin":{"disabled":true}}`), true); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionFollowsConnections: the bus is subscribed for a user
// while the user has a connection here, once however many.
func TestSubscriptionFollowsConnections(t *testing.T) {
	e := startEdge(t, "")
	a := e.connect(1, "since=0")
	b := e.connect(1, "since=0")
	if n := e.broker.subscribed(1); n != 1 {
		t.Fatalf("subscribed %d", n)
	}
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	for _, c := range []*client{a, b} {
		if evs, _ := c.until(typeEvent, 1, wait); seqs(t, evs)[0] != 1 {
			t.Fatal(evs)
		}
	}
	_ = a.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, ""))
	a.closeCode(wait)
	time.Sleep(50 * time.Millisecond)
	if n := e.broker.subscribed(1); n != 1 {
		t.Fatalf("one connection left: subscribed %d", n)
	}
	_ = b.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, ""))
	b.closeCode(wait)
	deadline := time.Now().Add(wait)
	for e.broker.subscribed(1) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still subscribed after the last connection closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.edgeMetric("spark_websocket_closes_total", `code="1000"`); got != 2 {
		t.Fatalf("closes 1000: %v", got)
	}
}

// TestBusReconnectCatchesUp: events published while the bus was cut reach
// every connection after it reconnects, from the origin's log, in order.
func TestBusReconnectCatchesUp(t *testing.T) {
	e := startEdge(t, "")
	a := e.connect(1, "since=0")
	b := e.connect(2, "since=0")
	e.broker.setDown(true)
	for range 3 {
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
		e.origin.appendAndPublish(2, "message", map[string]any{"conversation_id": 1})
	}
	e.broker.setDown(false)
	for _, c := range []*client{a, b} {
		evs, _ := c.until(typeEvent, 3, wait)
		if got := seqs(t, evs); got[0] != 1 || got[2] != 3 {
			t.Fatalf("caught up %v", got)
		}
	}
	// The counter is raised once the frame is queued, so the client may
	// read the last frame first: wait for it.
	deadline := time.Now().Add(wait)
	for got := e.edgeMetric("spark_websocket_replayed_events_total"); got != 6; got = e.edgeMetric("spark_websocket_replayed_events_total") {
		if time.Now().After(deadline) {
			t.Fatalf("replayed %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadWithOtherEventsMakesANewHub: changing events makes a new hub;
// the old hub's connections close with 1001 when the old config goes.
func TestReloadWithOtherEventsMakesANewHub(t *testing.T) {
	e := startEdge(t, "")
	old := e.connect(1, "")
	port := e.addr[strings.LastIndexByte(e.addr, ':')+1:]
	other := strings.ReplaceAll(t.Name(), "/", "_") + "-other"
	caddytest.Reload(t, edgeCaddyfile(e.admin, atoiTest(t, port), e.origin.url(), other, ""))
	if code, _ := old.closeCode(wait); code != closeGoingAway {
		t.Fatalf("old hub's connection: close %d", code)
	}
	e.connect(1, "")
	if brokerFor(other).subscribed(1) != 1 || e.broker.subscribed(1) != 0 {
		t.Fatal("the new connection is not on the new hub's bus alone")
	}
}

func atoiTest(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSubscribeFailure: a bus that cannot subscribe now refuses the
// connection with 503, and the subscription it keeps wanting is given
// back.
func TestSubscribeFailure(t *testing.T) {
	e := startEdge(t, "")
	e.broker.mu.Lock()
	e.broker.subscribeErr = errors.New("not connected")
	e.broker.mu.Unlock()
	hdr := http.Header{"Authorization": {"Bearer " + token(t, 1, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	if _, res, _ := e.dial("", hdr); res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%v", res)
	}
	if n := e.broker.subscribed(1); n != 0 {
		t.Fatalf("user left wanted by %d buses", n)
	}
}
