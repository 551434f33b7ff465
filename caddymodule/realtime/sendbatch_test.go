package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sentMessage is the part of a sent frame's message the tests check.
type sentMessage struct {
	ID      int64  `json:"id"`
	ConvSeq int64  `json:"conv_seq"`
	Body    string `json:"body"`
	Sender  int64  `json:"sender_id"`
}

func decodeSent(t *testing.T, f serverFrame) sentMessage {
	t.Helper()
	var m sentMessage
	if err := json.Unmarshal(f.Message, &m); err != nil {
		t.Fatalf("sent frame %s: %v", f.Message, err)
	}
	return m
}

// checkSentInOrder checks that the k-th sent frame carries body "m<k>"
// stored as the conversation's message k+1.
func checkSentInOrder(t *testing.T, sent []serverFrame) {
	t.Helper()
	for k, f := range sent {
		if m := decodeSent(t, f); m.Body != fmt.Sprintf("m%d", k) || m.ConvSeq != int64(k+1) {
			t.Fatalf("sent %d: %+v", k, m)
		}
	}
}

// TestSendsCoalesceIntoBatchCalls: many connections sending at once reach
// the origin in fewer calls than messages, each connection's messages
// stored in the order sent, each answered with its own stored message.
func TestSendsCoalesceIntoBatchCalls(t *testing.T) {
	e := startEdge(t, "")
	const pairs, each = 8, 5
	for p := range pairs {
		e.origin.match(int64(100+p), int64(2*p+1), int64(2*p+2))
	}
	e.origin.mu.Lock()
	e.origin.delay = 2 * time.Millisecond // each message: the calls overlap
	e.origin.mu.Unlock()
	conns := make([]*client, 2*pairs)
	for i := range conns {
		conns[i] = e.connect(int64(i+1), "since=1")
	}
	for i, c := range conns {
		for k := range each {
			c.send(fmt.Sprintf(`{"type":"send","conversation_id":%d,"body":"u%d-%d","client_msg_id":"c%d"}`, 100+i/2, i+1, k, k))
		}
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, _ := c.until(typeSent, each, wait)
			var last int64
			for k, f := range sent {
				m := decodeSent(t, f)
				if m.Body != fmt.Sprintf("u%d-%d", i+1, k) || m.Sender != int64(i+1) || f.ClientMsgID != fmt.Sprintf("c%d", k) || m.ConvSeq <= last {
					t.Errorf("user %d, sent %d: %+v (client id %s) after conv_seq %d", i+1, k, m, f.ClientMsgID, last)
				}
				last = m.ConvSeq
			}
		}()
	}
	wg.Wait()
	total := 2 * pairs * each
	if n := e.origin.count("POST /api/conversations/{id}/messages"); n != total {
		t.Fatalf("the origin stored %d messages, want %d", n, total)
	}
	if calls := e.origin.count("POST " + sendBatchPath); calls == 0 || calls >= total {
		t.Fatalf("%d batch calls for %d messages: not coalesced", calls, total)
	}
}

// TestSendBatchFailuresStayAlone: alongside good messages, a
// message to a conversation not the sender's gets not_member, a revoked
// token ends its own connection (4003), a retry of a stored client_msg_id
// gets the stored message again; the others are stored.
func TestSendBatchFailuresStayAlone(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	e.origin.match(8, 4, 5)
	e.origin.mu.Lock()
	e.origin.delay = 5 * time.Millisecond
	e.origin.mu.Unlock()
	good := e.connect(1, "since=1")
	stranger := e.connect(3, "since=0")
	revoked := e.connect(4, "since=1")
	e.origin.revoke(4)
	// Enough sends at once that they queue behind the calls in flight.
	for k := range 12 {
		good.send(fmt.Sprintf(`{"type":"send","conversation_id":7,"body":"m%d","client_msg_id":"c%d"}`, k, k))
	}
	stranger.send(`{"type":"send","conversation_id":7,"body":"x","client_msg_id":"s1"}`)
	revoked.send(`{"type":"send","conversation_id":8,"body":"x","client_msg_id":"r1"}`)
	good.send(`{"type":"send","conversation_id":7,"body":"m0","client_msg_id":"c0"}`) // a retry
	sent, _ := good.until(typeSent, 13, wait)
	first := decodeSent(t, sent[0])
	checkSentInOrder(t, sent[:12])
	if retry := decodeSent(t, sent[12]); retry.ID != first.ID || retry.ConvSeq != 1 {
		t.Fatalf("the retry got %+v, want the stored %+v", retry, first)
	}
	if errs, _ := stranger.until(typeError, 1, wait); errs[0].Code != codeNotMember || errs[0].Ref != "s1" {
		t.Fatalf("stranger: %+v", errs[0])
	}
	if code, _ := revoked.closeCode(wait); code != closeTokenRefused {
		t.Fatalf("revoked: close %d", code)
	}
}

// TestSendWithoutBatchRoute: an origin without the batch route (404) gets
// one call per message, and every message is stored and answered.
func TestSendWithoutBatchRoute(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	e.origin.setBatchStatus(http.StatusNotFound)
	c := e.connect(1, "since=1")
	const n = 10
	for k := range n {
		c.send(fmt.Sprintf(`{"type":"send","conversation_id":7,"body":"m%d","client_msg_id":"c%d"}`, k, k))
	}
	sent, _ := c.until(typeSent, n, wait)
	checkSentInOrder(t, sent)
	if calls := e.origin.count("POST " + sendBatchPath); calls < 1 || calls > sendBatchCalls {
		t.Fatalf("%d batch calls answered 404; want 1 to %d, then none", calls, sendBatchCalls)
	}
	if got := e.origin.count("POST /api/conversations/{id}/messages"); got != n {
		t.Fatalf("%d single calls, want %d", got, n)
	}
}

// TestSendBatchRefusedWhole: a batch call refused as a whole (here 401,
// which names no user's token) fails its messages with origin_unavailable
// and closes no connection.
func TestSendBatchRefusedWhole(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	e.origin.setBatchStatus(http.StatusUnauthorized)
	c := e.connect(1, "since=1")
	c.send(`{"type":"send","conversation_id":7,"body":"x","client_msg_id":"c1"}`)
	if errs, _ := c.until(typeError, 1, wait); errs[0].Code != codeOriginUnavailable || errs[0].Ref != "c1" {
		t.Fatalf("%+v", errs[0])
	}
	e.origin.setBatchStatus(0)
	c.send(`{"type":"send","conversation_id":7,"body":"x","client_msg_id":"c1"}`) // the retry
	if sent, _ := c.until(typeSent, 1, wait); sent[0].ClientMsgID != "c1" {
		t.Fatalf("%+v", sent[0])
	}
}

// take bounds a batch by count and by encoded size, skips sends whose
// sender gave up, and counts the call off when nothing is left.
func TestSendBatcherTakeBounds(t *testing.T) {
	b := &sendBatcher{calls: 1}
	live, gone := context.Background(), canceledContext()
	big := strings.Repeat("\x01", 16000) // escapes to 6 bytes a byte
	for i := range 30 {
		ctx := live
		if i == 3 {
			ctx = gone
		}
		b.queue = append(b.queue, &queuedSend{ctx: ctx, item: sendItem{Body: big}, size: encodedSize("tok", big, "c")})
	}
	for range 100 {
		b.queue = append(b.queue, &queuedSend{ctx: live, size: encodedSize("tok", "hi", "c")})
	}
	var sizes []int
	for {
		batch := b.take()
		if batch == nil {
			break
		}
		total := 0
		for _, q := range batch {
			if q.ctx.Err() != nil {
				t.Fatal("a send whose sender gave up was taken")
			}
			total += q.size
		}
		if len(batch) > sendBatchMax || (len(batch) > 1 && total > sendBatchBytes) {
			t.Fatalf("batch of %d, %d bytes", len(batch), total)
		}
		sizes = append(sizes, len(batch))
	}
	n := 0
	for _, s := range sizes {
		n += s
	}
	if n != 129 || b.calls != 0 {
		t.Fatalf("took %d sends in batches %v, calls left %d; want 129 and 0", n, sizes, b.calls)
	}
}

func canceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
