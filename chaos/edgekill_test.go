package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// The chat pair of the edge-killed drill (readers, so no swipe of the
// writers touches them).
const chatA, chatB = 390, 391

// drillEdgeKilled: edge 0 is killed (SIGKILL) under load. Clients whose
// request failed on it retry on edge 1 (same request: swipes and message
// sends are idempotent); no acknowledged write is lost. A WebSocket open on
// edge 0 reconnects to edge 1 with the last seq it saw and receives every
// message sent meanwhile, none missing.
func drillEdgeKilled(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "edge 0 killed (clients retry on edge 1)"}
	ctx := context.Background()
	conv := tr.matchPair(t, chatA, chatB)

	// A's chat connection on edge 0, replaying its whole log.
	in := newChatInbox()
	ws, err := sparkv1.Dial(ctx, sparkv1.Options{Edge: s.edges[0].URL(), Token: tr.tokens[chatA], HasSince: true})
	if err != nil {
		t.Fatalf("connect A's WebSocket to edge 0: %v", err)
	}
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); in.read(ws) }()

	// B sends a message every 50 ms through edge 0, retrying on edge 1.
	sendCtx, stopSending := context.WithCancel(ctx)
	var sent []int64
	var sendErrs []string
	var smu sync.Mutex
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for i := 0; sendCtx.Err() == nil; i++ {
			body := fmt.Sprintf(`{"body":"chaos %d","client_msg_id":"chaos-edge-%d"}`, i, i)
			path := fmt.Sprintf("/api/conversations/%d/messages", conv)
			o := do(ctx, tr.client, s.edges[0].URL(), "POST", path, tr.tokens[chatB], body, 200, 201)
			if o.status == 0 {
				o = do(ctx, tr.client, s.edges[1].URL(), "POST", path, tr.tokens[chatB], body, 200, 201)
			}
			var m struct {
				ID int64 `json:"id"`
			}
			smu.Lock()
			if o.kind == "" && json.Unmarshal([]byte(o.body), &m) == nil {
				sent = append(sent, m.ID)
			} else {
				sendErrs = append(sendErrs, fmt.Sprintf("message %d: %s %q", i, o.kind, truncate(o.body, 120)))
			}
			smu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var killed time.Time
	var retried int
	var rmu sync.Mutex
	load := func(ctx context.Context, i int) outcome {
		rng := rand.New(rand.NewPCG(uint64(i), 0xed6e))
		write := rng.Float64() < 0.3
		var o outcome
		var w, target int64
		if write {
			tr.mu.Lock()
			w = int64(firstWriter + rng.IntN(lastWriter-firstWriter+1))
			target = tr.nextTargetLocked(w)
			tr.mu.Unlock()
			if target > lastTarget {
				return outcome{op: "write", kind: "writer has swiped everyone", start: time.Now()}
			}
			o = tr.swipePair(ctx, 0, w, target)
		} else {
			o = tr.read(ctx, rng, 0)
		}
		if o.status != 0 {
			return o
		}
		rmu.Lock()
		retried++
		rmu.Unlock()
		if write {
			return tr.swipePair(ctx, 1, w, target)
		}
		o = do(ctx, tr.client, s.edges[1].URL(), "GET", o.key, tr.tokens[lastReader], "", 200)
		o.op, o.edge = "read", 1
		return o
	}
	var reconnect time.Duration
	outs := phases(p, load, func() {
		killed = time.Now()
		s.KillEdge(0)
		<-readerDone // the WebSocket saw its edge go
		last := in.lastSeq()
		ws2, err := sparkv1.Dial(ctx, sparkv1.Options{Edge: s.edges[1].URL(), Token: tr.tokens[chatA], Since: last, HasSince: true})
		if err != nil {
			t.Errorf("resume A's WebSocket on edge 1 after seq %d: %v", last, err)
			return
		}
		reconnect = time.Since(killed)
		readerDone = make(chan struct{})
		go func() { defer close(readerDone); in.read(ws2) }()
		time.Sleep(time.Second)
		stopSending()
		<-sendDone
		// Every message B had acknowledged reaches A on edge 1.
		smu.Lock()
		want := append([]int64(nil), sent...)
		smu.Unlock()
		deadline := time.Now().Add(20 * time.Second)
		for missing := in.missing(want); len(missing) > 0; missing = in.missing(want) {
			if time.Now().After(deadline) {
				t.Errorf("%d of %d acknowledged messages never reached A after the resume on edge 1: %v", len(missing), len(want), head(missing, 10))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = ws2.Close()
		<-readerDone
	})
	r.tally(outs)
	for _, f := range failures(outs, func(o outcome) bool { return o.kind != "" }) {
		t.Errorf("a request failed after its retry on edge 1: %s", f)
	}
	for _, e := range sendErrs {
		t.Errorf("a message send failed on both edges: %s", e)
	}
	if n := in.duplicates(); n > 0 {
		t.Logf("A received %d messages twice across the resume (clients dedupe by id)", n)
	}
	cell, problems := tr.checkWrites(time.Time{}, 1)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = fmt.Sprintf("%s; %d/%d messages delivered over the resume", cell, len(sent)-len(in.missing(sent)), len(sent))
	r.recovery = fmt.Sprintf("%d requests retried on edge 1; WebSocket resumed %s after the kill", retried, ms(reconnect))
	s.StartEdge(0)
	return r
}

// matchPair makes a and b like each other and returns their conversation.
func (tr *traffic) matchPair(t *testing.T, a, b int64) int64 {
	t.Helper()
	ctx := context.Background()
	var conv int64
	for _, pair := range [][2]int64{{a, b}, {b, a}} {
		o := do(ctx, tr.client, tr.s.edges[1].URL(), "POST", "/api/swipes", tr.tokens[pair[0]],
			fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, pair[1]), 200, 201)
		if o.kind != "" {
			t.Fatalf("like %d->%d: %s %q", pair[0], pair[1], o.kind, o.body)
		}
		var res struct {
			Match *struct {
				ConversationID int64 `json:"conversation_id"`
			} `json:"match"`
		}
		if err := json.Unmarshal([]byte(o.body), &res); err != nil {
			t.Fatalf("like %d->%d: %v", pair[0], pair[1], err)
		}
		if res.Match != nil {
			conv = res.Match.ConversationID
		}
	}
	if conv == 0 {
		t.Fatalf("%d and %d liked each other and got no conversation", a, b)
	}
	return conv
}

// chatInbox is what one chat client received: message ids and the last seq.
type chatInbox struct {
	mu   sync.Mutex
	got  map[int64]int // message id -> times received
	last int64
}

func newChatInbox() *chatInbox { return &chatInbox{got: map[int64]int{}} }

// read takes frames from c until it fails.
func (in *chatInbox) read(c *sparkv1.Conn) {
	for {
		frames, err := c.ReadFrames()
		if err != nil {
			return
		}
		for _, f := range frames {
			if f.Type != "event" || f.Event == nil {
				continue
			}
			in.mu.Lock()
			in.last = max(in.last, f.Event.Seq)
			if m, err := f.Event.MessageData(); err == nil {
				in.got[m.ID]++
			}
			in.mu.Unlock()
		}
	}
}

func (in *chatInbox) lastSeq() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.last
}

func (in *chatInbox) missing(want []int64) []int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []int64
	for _, id := range want {
		if in.got[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (in *chatInbox) duplicates() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, c := range in.got {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}

func head(s []int64, n int) []int64 {
	if len(s) > n {
		return s[:n]
	}
	return s
}
