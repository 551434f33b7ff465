package origin

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/origin/store"
)

// Message batching defaults (the plan's message queue).
const (
	// DefaultMessageBatchSize is the most messages one transaction stores.
	DefaultMessageBatchSize = 64
	// DefaultMessageBatchWait is the longest a send waits for company.
	DefaultMessageBatchWait = 2 * time.Millisecond
	// DefaultMessageBatchLanes is how many batches may commit at once.
	DefaultMessageBatchLanes = 2
)

// MessageBatchOptions configure how concurrent sends are grouped into one
// multi-row insert per batch.
type MessageBatchOptions struct {
	// Size is the most messages one batch stores; 0: DefaultMessageBatchSize;
	// 1: no batching (each send is its own transaction).
	Size int
	// Wait is the longest a send waits for company before its batch goes;
	// 0: never wait (a batch is whatever queued while the previous one
	// committed). A send waits only while another send is in the batcher:
	// a lone send at an idle origin goes at once.
	Wait time.Duration
	// Lanes is how many batches may commit at once; 0:
	// DefaultMessageBatchLanes. A conversation always uses the same lane,
	// so its messages keep their order.
	Lanes int
}

// DefaultMessageBatchOptions returns the defaults: 64 messages, 2 ms, 2 lanes.
func DefaultMessageBatchOptions() MessageBatchOptions {
	return MessageBatchOptions{Size: DefaultMessageBatchSize, Wait: DefaultMessageBatchWait, Lanes: DefaultMessageBatchLanes}
}

func (o MessageBatchOptions) withDefaults() (MessageBatchOptions, error) {
	if o.Size < 0 || o.Wait < 0 || o.Lanes < 0 {
		return o, fmt.Errorf("origin: message batch size %d, wait %v, lanes %d: none may be negative", o.Size, o.Wait, o.Lanes)
	}
	if o.Size == 0 {
		o.Size = DefaultMessageBatchSize
	}
	if o.Lanes == 0 {
		o.Lanes = DefaultMessageBatchLanes
	}
	return o, nil
}

// commitFunc stores a batch of drafts (and publishes what they appended).
type commitFunc func(ctx context.Context, drafts []store.MessageDraft) []store.SendResult

// messageBatcher groups concurrent sends into batches: each send is queued
// on its conversation's lane; a goroutine per lane, running while the lane
// has sends queued, takes up to Size of them (waiting up to Wait for
// company while other sends are in flight), commits them in one call and
// answers each send once that call returned. Sends whose request ended
// while queued are left out.
type messageBatcher struct {
	opts     MessageBatchOptions
	commit   commitFunc
	lanes    []*batchLane
	inFlight atomic.Int64 // sends inside the batcher, queued or committing
	sizes    prometheus.Observer
	running  sync.WaitGroup // lane goroutines
}

// pendingSend is one send waiting for its batch.
type pendingSend struct {
	ctx     context.Context
	draft   store.MessageDraft
	arrived time.Time
	done    chan store.SendResult // buffered: the lane never blocks on it
}

// batchLane is one queue of sends and its committing goroutine.
type batchLane struct {
	b       *messageBatcher
	mu      sync.Mutex
	queue   []*pendingSend
	running bool          // a goroutine gathers or commits
	full    chan struct{} // signalled when the queue reaches Size
}

func newMessageBatcher(o MessageBatchOptions, commit commitFunc, sizes prometheus.Observer) *messageBatcher {
	b := &messageBatcher{opts: o, commit: commit, sizes: sizes}
	for range o.Lanes {
		b.lanes = append(b.lanes, &batchLane{b: b, full: make(chan struct{}, 1)})
	}
	return b
}

// send stores d in a batch and returns its result, or the context's error
// if ctx ends first (the message may still be stored: a retry with the same
// client_msg_id returns it).
func (b *messageBatcher) send(ctx context.Context, d store.MessageDraft) store.SendResult {
	if b.opts.Size <= 1 {
		b.sizes.Observe(1)
		return b.commit(ctx, []store.MessageDraft{d})[0]
	}
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	p := &pendingSend{ctx: ctx, draft: d, arrived: time.Now(), done: make(chan store.SendResult, 1)}
	b.lanes[uint64(d.ConversationID)%uint64(len(b.lanes))].enqueue(p)
	select {
	case r := <-p.done:
		return r
	case <-ctx.Done():
		return store.SendResult{Err: fmt.Errorf("waiting for the message batch: %w", ctx.Err())}
	}
}

// sendAll stores ds, in order, as send would each, and returns their
// results in the same order. The drafts are queued together: those of one
// conversation keep their order, and they can share a batch.
func (b *messageBatcher) sendAll(ctx context.Context, ds []store.MessageDraft) []store.SendResult {
	out := make([]store.SendResult, len(ds))
	if b.opts.Size <= 1 {
		for i, d := range ds {
			out[i] = b.send(ctx, d)
		}
		return out
	}
	b.inFlight.Add(int64(len(ds)))
	defer b.inFlight.Add(-int64(len(ds)))
	ps := make([]*pendingSend, len(ds))
	now := time.Now()
	for i, d := range ds {
		ps[i] = &pendingSend{ctx: ctx, draft: d, arrived: now, done: make(chan store.SendResult, 1)}
		b.lanes[uint64(d.ConversationID)%uint64(len(b.lanes))].enqueue(ps[i])
	}
	for i, p := range ps {
		select {
		case out[i] = <-p.done:
		case <-ctx.Done():
			out[i] = store.SendResult{Err: fmt.Errorf("waiting for the message batch: %w", ctx.Err())}
		}
	}
	return out
}

// drain waits until no batch is gathering or committing, or ctx ends.
// Only once no more sends arrive (after the HTTP server stopped).
func (b *messageBatcher) drain(ctx context.Context) error {
	idle := make(chan struct{})
	go func() {
		b.running.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("message batches still committing: %w", ctx.Err())
	}
}

func (l *batchLane) enqueue(p *pendingSend) {
	l.mu.Lock()
	l.queue = append(l.queue, p)
	start := !l.running
	l.running = true
	full := len(l.queue) >= l.b.opts.Size
	l.mu.Unlock()
	switch {
	case start:
		l.b.running.Add(1)
		go l.run()
	case full:
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

// run commits batches until the lane's queue is empty.
func (l *batchLane) run() {
	defer l.b.running.Done()
	for {
		batch := l.gather()
		if batch == nil {
			return
		}
		l.commitBatch(batch)
	}
}

// gather returns the next batch, or nil (and marks the lane idle) when
// nothing is queued.
func (l *batchLane) gather() []*pendingSend {
	o := l.b.opts
	l.mu.Lock()
	for len(l.queue) > 0 && len(l.queue) < o.Size && l.b.inFlight.Load() > 1 {
		wait := time.Until(l.queue[0].arrived.Add(o.Wait))
		if wait <= 0 {
			break
		}
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-l.full:
		case <-t.C:
		}
		t.Stop()
		l.mu.Lock()
		if time.Since(l.queue[0].arrived) >= o.Wait {
			break
		}
	}
	if len(l.queue) == 0 {
		l.running = false
		l.mu.Unlock()
		return nil
	}
	n := min(len(l.queue), o.Size)
	batch := append([]*pendingSend(nil), l.queue[:n]...)
	l.queue = append(l.queue[:0:0], l.queue[n:]...)
	l.mu.Unlock()
	select { // a signal meant for this batch
	case <-l.full:
	default:
	}
	return batch
}

// commitBatch stores the sends still wanted and answers them.
func (l *batchLane) commitBatch(batch []*pendingSend) {
	live := batch[:0]
	for _, p := range batch {
		if p.ctx.Err() == nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return
	}
	drafts := make([]store.MessageDraft, len(live))
	for i, p := range live {
		drafts[i] = p.draft
	}
	l.b.sizes.Observe(float64(len(drafts)))
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	// The batch's write position reaches every sender's session (their
	// reads after it must see it), before any of them is answered.
	sess := store.NewSession(0)
	res := l.b.commit(store.WithSession(ctx, sess), drafts)
	for _, p := range live {
		store.SessionFrom(p.ctx).Advance(sess.After())
	}
	for i, r := range res {
		live[i].done <- r
	}
}
