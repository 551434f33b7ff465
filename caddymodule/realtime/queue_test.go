package realtime

import (
	"context"
	"testing"
	"time"
)

func TestQueueBoundsAndCoalescing(t *testing.T) {
	q := newQueue(3, 10, nil)
	for i, want := range []bool{true, true, true, false} {
		if got := q.push(outFrame{data: []byte("ab")}); got != want {
			t.Fatalf("push %d: %v", i, got)
		}
	}
	q = newQueue(10, 5, nil)
	if !q.push(outFrame{data: []byte("abcd")}) || q.push(outFrame{data: []byte("ab")}) {
		t.Fatal("byte bound not kept")
	}
	q = newQueue(100, 1000, nil)
	for range 5 {
		q.push(outFrame{data: []byte("0123456789")})
	}
	// 11 bytes a frame with its separator: two fit in 25.
	if got := q.take(nil, 25); len(got) != 2 || q.len() != 3 {
		t.Fatalf("took %d, left %d", len(got), q.len())
	}
	// A frame larger than the bound goes alone.
	q = newQueue(100, 1000, nil)
	q.push(outFrame{data: make([]byte, 50)})
	if got := q.take(nil, 10); len(got) != 1 {
		t.Fatalf("took %d", len(got))
	}
}

func TestQueuePushWaitLeavesRoom(t *testing.T) {
	q := newQueue(4, 1000, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := q.pushWait(ctx, outFrame{data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- q.pushWait(ctx, outFrame{data: []byte("x")}) }()
	select {
	case <-done:
		t.Fatal("a replay filled the queue past half")
	case <-time.After(50 * time.Millisecond):
	}
	if !q.push(outFrame{data: []byte("live")}) {
		t.Fatal("no room for a live frame")
	}
	q.take(nil, 1000)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	q.push(outFrame{data: []byte("x")})
	q.push(outFrame{data: []byte("x")})
	if err := q.pushWait(short, outFrame{data: []byte("x")}); err == nil {
		t.Fatal("pushWait past its context")
	}
}

func TestLimiter(t *testing.T) {
	var l limiter
	t0 := time.Unix(0, 0)
	l.init(10, 5, t0)
	for i := range 5 {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("burst frame %d refused", i)
		}
	}
	var flood bool
	refused := 0
	for !flood {
		var ok bool
		ok, flood = l.allow(t0)
		if ok {
			t.Fatal("allowed above the burst")
		}
		refused++
	}
	if refused != 6 {
		t.Fatalf("flood after %d refusals, want burst+1", refused)
	}
	// A second later: 10 tokens back (capped at 5), refusals forgiven by 5.
	if ok, _ := l.allow(t0.Add(time.Second)); !ok {
		t.Fatal("refused after refill")
	}
	// Sending at twice the rate is a flood within seconds.
	l.init(10, 5, t0)
	now, closed := t0, false
	for i := 0; i < 200 && !closed; i++ {
		now = now.Add(50 * time.Millisecond / 2)
		_, closed = l.allow(now)
	}
	if !closed {
		t.Fatal("twice the rate never counted as a flood")
	}
}
