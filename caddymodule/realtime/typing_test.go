package realtime

import (
	"context"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// gatedPublisher records each Publish call's notices; every call waits
// for a value on gate after telling entered.
type gatedPublisher struct {
	entered chan int // notices of the call
	gate    chan struct{}
	calls   chan []eventbus.Message
}

func (g *gatedPublisher) Publish(_ context.Context, msgs ...eventbus.Message) error {
	g.entered <- len(msgs)
	<-g.gate
	g.calls <- append([]eventbus.Message(nil), msgs...)
	return nil
}

// TestTypingPublisherBatches: notices queued while a bus call is in
// flight go together in the next call, in order; beyond the queue's
// bound they are dropped, never blocking the caller.
func TestTypingPublisherBatches(t *testing.T) {
	g := &gatedPublisher{entered: make(chan int, 1), gate: make(chan struct{}), calls: make(chan []eventbus.Message, 4)}
	p := newTypingPublisher(g, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-p.done }()
	go p.run(ctx)

	msg := func(i int) eventbus.Message {
		return eventbus.Message{UserID: int64(i), Payload: []byte(strconv.Itoa(i))}
	}
	p.publish(msg(0))
	if n := <-g.entered; n != 1 {
		t.Fatalf("first call with %d notices, want 1", n)
	}
	// The bus is busy with notice 0: these wait, then go in one call.
	for i := 1; i <= 10; i++ {
		if !p.publish(msg(i)) {
			t.Fatalf("notice %d dropped", i)
		}
	}
	g.gate <- struct{}{}
	<-g.calls
	if n := <-g.entered; n != 10 {
		t.Fatalf("second call with %d notices, want the 10 queued", n)
	}
	// Still busy: fill the queue to its bound, then one more is dropped.
	for i := 0; i < maxTypingQueued; i++ {
		if !p.publish(msg(100 + i)) {
			t.Fatalf("notice %d of %d dropped", i, maxTypingQueued)
		}
	}
	if p.publish(msg(-1)) {
		t.Fatal("a notice beyond the queue's bound was queued")
	}
	g.gate <- struct{}{}
	second := <-g.calls
	for i, m := range second {
		if m.UserID != int64(i+1) {
			t.Fatalf("second call's notice %d is %d, want %d (in order)", i, m.UserID, i+1)
		}
	}
	// The full queue drains in calls of at most maxTypingBatch.
	for got := 0; got < maxTypingQueued; {
		n := <-g.entered
		if n > maxTypingBatch {
			t.Fatalf("a call of %d notices, want at most %d", n, maxTypingBatch)
		}
		g.gate <- struct{}{}
		<-g.calls
		got += n
	}
}
