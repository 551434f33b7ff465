package origin

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/origin/store"
)

// Publishing limits.
const (
	// publishQueueMax bounds the events waiting for the bus; beyond it new
	// ones are dropped (counted as publish errors: they are in the log, and
	// edges recover them from a gap in the sequence).
	publishQueueMax = 100_000
	// publishTimeout bounds one Publish call.
	publishTimeout = 5 * time.Second
	// publishLogEvery is the least time between two publish-failure logs.
	publishLogEvery = 10 * time.Second
)

// eventPublisher hands committed events to the bus off the request's path:
// a write queues its events and returns; one goroutine, running while
// there is something queued, publishes whatever has gathered in one call,
// in the order queued. A failure never reaches the write: it is counted
// and logged (at most once per publishLogEvery).
type eventPublisher struct {
	bus    eventbus.Publisher // nil: nothing is published
	errors prometheus.Counter
	sent   prometheus.Counter
	log    *slog.Logger

	mu      sync.Mutex
	queue   []eventbus.Message
	running bool
	idle    chan struct{} // closed when the running goroutine ends
	logged  time.Time     // last failure logged
	missed  int           // failures since, not logged
}

func newEventPublisher(bus eventbus.Publisher, m *Metrics, log *slog.Logger) *eventPublisher {
	idle := make(chan struct{})
	close(idle)
	return &eventPublisher{bus: bus, errors: m.EventPublishErrors, sent: m.EventsPublished, log: log, idle: idle}
}

// publish queues evs for the bus (no-op without one).
func (p *eventPublisher) publish(evs []store.Event) {
	if p.bus == nil || len(evs) == 0 {
		return
	}
	msgs := make([]eventbus.Message, 0, len(evs))
	for _, e := range evs {
		b, err := e.JSON()
		if err != nil {
			p.failed(1, err)
			continue
		}
		msgs = append(msgs, eventbus.Message{UserID: e.UserID, Seq: e.Seq, Payload: b})
	}
	p.mu.Lock()
	if drop := len(p.queue) + len(msgs) - publishQueueMax; drop > 0 {
		p.mu.Unlock()
		p.failed(len(msgs), errQueueFull)
		return
	}
	p.queue = append(p.queue, msgs...)
	start := !p.running
	if start {
		p.running = true
		p.idle = make(chan struct{})
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

// errQueueFull is logged when the queue is at publishQueueMax.
var errQueueFull = errors.New("publish queue full: the bus is slower than the writes")

// run publishes until the queue is empty.
func (p *eventPublisher) run() {
	for {
		p.mu.Lock()
		msgs := p.queue
		p.queue = nil
		if len(msgs) == 0 {
			p.running = false
			close(p.idle)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		err := p.bus.Publish(ctx, msgs...)
		cancel()
		if err != nil {
			p.failed(len(msgs), err)
		} else {
			p.sent.Add(float64(len(msgs)))
		}
	}
}

// failed counts n events not published and logs err, rate-limited.
func (p *eventPublisher) failed(n int, err error) {
	p.errors.Add(float64(n))
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.logged) < publishLogEvery {
		p.missed += n
		p.mu.Unlock()
		return
	}
	missed := p.missed
	p.logged, p.missed = now, 0
	p.mu.Unlock()
	p.log.Warn("events not published (they are in the event log; edges catch up from it)",
		"events", n, "more_since_last_log", missed, "err", err)
}

// drain waits until everything queued was handed to the bus, or ctx ends.
func (p *eventPublisher) drain(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
