package realtime

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// Bounds of the typing publisher.
const (
	// maxTypingQueued bounds the typing notices waiting for the bus; more
	// are dropped (typing is ephemeral).
	maxTypingQueued = 4096
	// maxTypingBatch bounds the notices of one bus call.
	maxTypingBatch = 512
)

// typingPublisher publishes a hub's typing notices to the bus. Readers
// queue a notice and go on; one goroutine publishes everything queued
// while its previous call was in flight in one bus call (one Redis
// pipeline), so a burst of notices costs one round trip instead of one
// each, and a slow bus never holds a reader.
type typingPublisher struct {
	bus    eventbus.Publisher
	logger *zap.Logger

	mu      sync.Mutex
	pending []eventbus.Message
	wake    chan struct{} // signalled when a notice is queued
	done    chan struct{} // closed when run returned
}

func newTypingPublisher(bus eventbus.Publisher, logger *zap.Logger) *typingPublisher {
	return &typingPublisher{bus: bus, logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// publish queues m; it reports false when the queue is full and m was
// dropped.
func (p *typingPublisher) publish(m eventbus.Message) bool {
	p.mu.Lock()
	ok := len(p.pending) < maxTypingQueued
	if ok {
		p.pending = append(p.pending, m)
	}
	p.mu.Unlock()
	if ok {
		signal(p.wake)
	}
	return ok
}

// run publishes the queued notices until ctx ends.
func (p *typingPublisher) run(ctx context.Context) {
	defer close(p.done)
	var batch []eventbus.Message
	for {
		select {
		case <-p.wake:
		case <-ctx.Done():
			return
		}
		for batch = p.take(batch[:0]); len(batch) > 0; batch = p.take(batch[:0]) {
			pctx, cancel := context.WithTimeout(ctx, typingPublishTimeout)
			if err := p.bus.Publish(pctx, batch...); err != nil {
				p.logger.Debug("typing notices not published", zap.Int("notices", len(batch)), zap.Error(err))
			}
			cancel()
			clear(batch)
		}
	}
}

// take moves up to maxTypingBatch queued notices to dst.
func (p *typingPublisher) take(dst []eventbus.Message) []eventbus.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(p.pending), maxTypingBatch)
	dst = append(dst, p.pending[:n]...)
	rest := copy(p.pending, p.pending[n:])
	clear(p.pending[rest:])
	p.pending = p.pending[:rest]
	if rest == 0 && cap(p.pending) > maxTypingBatch {
		p.pending = nil // a burst's backing array is not kept
	}
	return dst
}
