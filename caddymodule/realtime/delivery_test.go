package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
)

// TestResumeWithSince: since=N delivers every event after N, then live
// ones, each once, in order.
func TestResumeWithSince(t *testing.T) {
	e := startEdge(t, "")
	for range 5 {
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	}
	c := e.connect(1, "since=2")
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	evs, _ := c.until(typeEvent, 4, wait)
	if got := seqs(t, evs); fmt.Sprint(got) != "[3 4 5 6]" {
		t.Fatalf("got %v", got)
	}
	if e.edgeMetric("spark_websocket_resumes_total") != 1 {
		t.Fatal("resume not counted")
	}
	c.send(`{"type":"ack","seq":6}`)
	c.send(`{"type":"ack","seq":7}`)
	if errs, _ := c.until(typeError, 1, wait); errs[0].Code != codeBadAck {
		t.Fatalf("%+v", errs[0])
	}
}

// TestGapAndDuplicates: a live event after a lost one makes the edge fetch
// the missing one first; a duplicate is dropped.
func TestGapAndDuplicates(t *testing.T) {
	e := startEdge(t, "")
	c := e.connect(1, "since=0")
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	_, lost := e.origin.append(1, "message", map[string]any{"conversation_id": 1}) // the bus lost it
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	_ = e.broker.Publish(context.Background(), eventbus.Message{UserID: 1, Seq: 2, Payload: lost}) // late duplicate
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	evs, _ := c.until(typeEvent, 4, wait)
	if got := seqs(t, evs); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("got %v", got)
	}
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	if evs, _ := c.until(typeEvent, 1, wait); seqs(t, evs)[0] != 5 {
		t.Fatalf("then %s", evs[0].Event)
	}
}

// TestOriginDownDuringAFetch: while the origin fails, a gap waits (live
// events held); when it is back, everything arrives in order.
func TestOriginDownDuringAFetch(t *testing.T) {
	e := startEdge(t, "")
	c := e.connect(1, "since=0")
	e.origin.setFailing(true)
	e.origin.append(1, "message", map[string]any{"conversation_id": 1}) // lost
	for range 3 {
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	}
	time.Sleep(300 * time.Millisecond) // a few failed fetches
	e.origin.setFailing(false)
	evs, _ := c.until(typeEvent, 4, wait)
	if got := seqs(t, evs); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("got %v", got)
	}
}

// TestResyncBeyondRetention: since older than the origin keeps gets a
// resync frame, then a normal close.
func TestResyncBeyondRetention(t *testing.T) {
	e := startEdge(t, "")
	for range 5 {
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	}
	e.origin.prune(1, 3)
	c := e.connect(1, "since=1")
	if fs, _ := c.until(typeResync, 1, wait); len(fs) != 1 {
		t.Fatal(fs)
	}
	if code, reason := c.closeCode(wait); code != closeNormal || reason != resyncReason {
		t.Fatalf("close %d %q", code, reason)
	}
}

// TestTokenRefusedLater: the origin refusing the token (revoked) on a
// later call ends the connection with 4003.
func TestTokenRefusedLater(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	c := e.connect(1, "since=0")
	c.until(typeEvent, 1, wait)
	e.origin.revoke(1)
	c.send(`{"type":"send","conversation_id":7,"body":"hi","client_msg_id":"m1"}`)
	if code, _ := c.closeCode(wait); code != closeTokenRefused {
		t.Fatalf("close %d", code)
	}
}

// TestUnmatchStopsTyping: after an unmatch neither side's typing goes
// through; a match made while connected starts it.
func TestUnmatchStopsTyping(t *testing.T) {
	e := startEdge(t, "")
	a := e.connect(1, "since=0")
	b := e.connect(2, "since=0")
	e.origin.match(7, 1, 2) // while connected: learnt from the match event
	a.until(typeEvent, 1, wait)
	b.until(typeEvent, 1, wait)
	a.send(`{"type":"typing","conversation_id":7}`)
	if fs, _ := b.until(typeTyping, 1, wait); fs[0].UserID != 1 {
		t.Fatal(fs)
	}
	e.origin.unmatch(7)
	a.until(typeEvent, 1, wait)
	b.until(typeEvent, 1, wait)
	a.send(`{"type":"typing","conversation_id":7}`)
	if errs, _ := a.until(typeError, 1, wait); errs[0].Code != codeNotMember {
		t.Fatalf("%+v", errs[0])
	}
	// A typing frame published for the ended conversation is dropped at
	// the receiving edge too.
	_ = e.broker.Publish(context.Background(), eventbus.Message{UserID: 2, Payload: appendTypingFrame(nil, 7, 1)})
	b.send(`{"type":"nope"}`)
	if fs, other := b.until(typeError, 1, wait); len(other) != 0 {
		t.Fatalf("got %+v before the error %+v", other, fs)
	}
}

// TestSendsKeepOrderPerConversation: messages sent in a row are stored in
// that order, and each gets its sent frame.
func TestSendsKeepOrderPerConversation(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	e.origin.mu.Lock()
	e.origin.delay = 5 * time.Millisecond
	e.origin.mu.Unlock()
	c := e.connect(1, "since=1")
	const n = 20
	for i := range n {
		c.send(fmt.Sprintf(`{"type":"send","conversation_id":7,"body":"%d","client_msg_id":"m%d"}`, i, i))
	}
	sent, _ := c.until(typeSent, n, wait)
	for i, f := range sent {
		var m struct {
			ConvSeq int64  `json:"conv_seq"`
			Body    string `json:"body"`
		}
		if err := json.Unmarshal(f.Message, &m); err != nil || m.Body != fmt.Sprint(i) || m.ConvSeq != int64(i+1) || f.ClientMsgID != fmt.Sprintf("m%d", i) {
			t.Fatalf("sent %d: %+v %s", i, m, f.Message)
		}
	}
}

// TestUndecodableLogCloses1011: an event in the origin's log the edge
// cannot read ends the connection with 1011 (order cannot be kept).
func TestUndecodableLogCloses1011(t *testing.T) {
	e := startEdge(t, "")
	e.origin.mu.Lock()
	e.origin.logs[1] = append(e.origin.logs[1], json.RawMessage(`{"seq":"one"}`))
	e.origin.mu.Unlock()
	c := e.connect(1, "since=0")
	if code, _ := c.closeCode(wait); code != closeInternal {
		t.Fatalf("close %d", code)
	}
}

// TestLiveOnlyWithPrunedLog: a live-only connection of a user whose first
// events are no longer kept (the origin answers 410 to since=0) starts at
// its first live event.
func TestLiveOnlyWithPrunedLog(t *testing.T) {
	e := startEdge(t, "")
	for range 3 {
		e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	}
	e.origin.prune(1, 2)
	c := e.connect(1, "")
	time.Sleep(100 * time.Millisecond) // the watermark fetch answered 410
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	e.origin.append(1, "message", map[string]any{"conversation_id": 1}) // lost
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1})
	evs, _ := c.until(typeEvent, 3, wait)
	if got := seqs(t, evs); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("got %v", got)
	}
}

// TestSinceBeyondTheLog: a since the log never reached is answered like
// one beyond retention: resync.
func TestSinceBeyondTheLog(t *testing.T) {
	e := startEdge(t, "")
	c := e.connect(1, "since=9")
	if fs, _ := c.until(typeResync, 1, wait); len(fs) != 1 {
		t.Fatal(fs)
	}
}

// TestLiveOnlyStartsAtTheHandshake: a connection without since delivers
// everything stored once the client holds it, however slowly the origin
// tells the log's end (before, the end was asked after the handshake, so an
// event stored meanwhile counted as older than the connection and was
// never delivered).
func TestLiveOnlyStartsAtTheHandshake(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2) // before the connection: not delivered
	e.origin.mu.Lock()
	e.origin.eventsDelay = 300 * time.Millisecond
	e.origin.mu.Unlock()
	c := e.connect(2, "")
	e.origin.match(8, 3, 2) // after the handshake: delivered
	evs, _ := c.until(typeEvent, 1, wait)
	var ev struct {
		Seq  int64 `json:"seq"`
		Data struct {
			ConversationID int64 `json:"conversation_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(evs[0].Event, &ev); err != nil || ev.Seq != 2 || ev.Data.ConversationID != 8 {
		t.Fatalf("first event %s (%v), want seq 2 of conversation 8", evs[0].Event, err)
	}
}
