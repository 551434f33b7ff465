package origin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/origin/store"
)

// recordingCommit is a commitFunc that records each batch and answers every
// draft with its position; hold, while set, blocks commits until closed.
type recordingCommit struct {
	mu      sync.Mutex
	batches [][]store.MessageDraft
	hold    chan struct{}
}

func (c *recordingCommit) commit(_ context.Context, drafts []store.MessageDraft) []store.SendResult {
	c.mu.Lock()
	c.batches = append(c.batches, slices.Clone(drafts))
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	out := make([]store.SendResult, len(drafts))
	for i, d := range drafts {
		out[i] = store.SendResult{Message: store.Message{ConversationID: d.ConversationID, Body: d.Body, ConvSeq: int64(i + 1)}, Created: true}
	}
	return out
}

func (c *recordingCommit) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, b := range c.batches {
		out = append(out, len(b))
	}
	return out
}

func newTestBatcher(o MessageBatchOptions, c *recordingCommit) *messageBatcher {
	return newMessageBatcher(o, c.commit, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
}

func draft(conv int64, body string) store.MessageDraft {
	return store.MessageDraft{SenderID: 1, ConversationID: conv, Body: body, ClientMsgID: body}
}

// A lone send does not wait for company that is not coming.
func TestBatcherLoneSendGoesAtOnce(t *testing.T) {
	c := &recordingCommit{}
	b := newTestBatcher(MessageBatchOptions{Size: 8, Wait: 5 * time.Second, Lanes: 1}, c)
	start := time.Now()
	if r := b.send(context.Background(), draft(1, "a")); r.Err != nil || r.Message.Body != "a" {
		t.Fatalf("send: %+v", r)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a lone send took %v", d)
	}
}

// Sends queued while a batch commits go together in the next ones, at
// most Size per batch, in arrival order per conversation; each gets its
// own answer.
func TestBatcherGroupsQueuedSends(t *testing.T) {
	c := &recordingCommit{hold: make(chan struct{})}
	b := newTestBatcher(MessageBatchOptions{Size: 4, Wait: 20 * time.Millisecond, Lanes: 1}, c)
	var wg sync.WaitGroup
	results := make([]store.SendResult, 10)
	send := func(i int) {
		defer wg.Done()
		results[i] = b.send(context.Background(), draft(7, fmt.Sprint(i)))
	}
	wg.Add(1)
	go send(0)
	for len(c.sizes()) == 0 { // the first batch is committing (held)
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < 10; i++ {
		wg.Add(1)
		go send(i)
		time.Sleep(2 * time.Millisecond) // arrival order = i
	}
	c.mu.Lock()
	close(c.hold)
	c.hold = nil
	c.mu.Unlock()
	wg.Wait()
	sizes := c.sizes()
	if sizes[0] != 1 || slices.Max(sizes) != 4 || len(sizes) > 5 {
		t.Fatalf("batch sizes %v: want 1, then batches of at most 4", sizes)
	}
	var order []string
	for _, batch := range c.batches {
		for _, d := range batch {
			order = append(order, d.Body)
		}
	}
	if fmt.Sprint(order) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Fatalf("committed in order %v", order)
	}
	for i, r := range results {
		if r.Err != nil || r.Message.Body != fmt.Sprint(i) {
			t.Fatalf("send %d answered %+v", i, r)
		}
	}
}

// A send whose request ends while queued is answered with the context's
// error and left out of its batch.
func TestBatcherDropsAbandonedSends(t *testing.T) {
	c := &recordingCommit{hold: make(chan struct{})}
	b := newTestBatcher(MessageBatchOptions{Size: 4, Wait: time.Millisecond, Lanes: 1}, c)
	done := make(chan store.SendResult)
	go func() { done <- b.send(context.Background(), draft(7, "first")) }()
	for len(c.sizes()) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := make(chan store.SendResult)
	go func() { abandoned <- b.send(ctx, draft(7, "abandoned")) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if r := <-abandoned; r.Err == nil {
		t.Fatalf("abandoned send answered %+v", r)
	}
	c.mu.Lock()
	close(c.hold)
	c.hold = nil
	c.mu.Unlock()
	<-done
	if r := b.send(context.Background(), draft(7, "later")); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, batch := range c.batches {
		for _, d := range batch {
			if d.Body == "abandoned" {
				t.Fatalf("abandoned send committed: %v", c.batches)
			}
		}
	}
}

// Conversations on different lanes commit independently: a held lane
// does not delay the other.
func TestBatcherLanesAreIndependent(t *testing.T) {
	c := &recordingCommit{}
	hold := make(chan struct{})
	b := newMessageBatcher(MessageBatchOptions{Size: 4, Lanes: 2}, func(ctx context.Context, d []store.MessageDraft) []store.SendResult {
		if d[0].ConversationID == 2 {
			<-hold
		}
		return c.commit(ctx, d)
	}, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
	held := make(chan store.SendResult)
	go func() { held <- b.send(context.Background(), draft(2, "held")) }()
	if r := b.send(context.Background(), draft(1, "free")); r.Err != nil {
		t.Fatal(r.Err)
	}
	close(hold)
	if r := <-held; r.Err != nil {
		t.Fatal(r.Err)
	}
}

// Size 1 commits each send on its own, in the caller's goroutine.
func TestBatcherSizeOneIsDirect(t *testing.T) {
	c := &recordingCommit{}
	b := newTestBatcher(MessageBatchOptions{Size: 1, Lanes: 1}, c)
	for i := 0; i < 3; i++ {
		b.send(context.Background(), draft(1, fmt.Sprint(i)))
	}
	if fmt.Sprint(c.sizes()) != "[1 1 1]" {
		t.Fatalf("sizes %v", c.sizes())
	}
}
