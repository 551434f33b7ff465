package push

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/origin/store"
)

// Options configures a Notifier. Zero fields take the defaults.
type Options struct {
	// Directory reads devices, read marks and names; required.
	Directory Directory
	// Presence says who is connected now; nil: nobody is.
	Presence Presence
	// Providers send per platform; a device of a platform without one is
	// skipped (counted).
	Providers map[store.Platform]Provider
	// Window is how long a user's first event waits for more (2 s), up
	// to 5% longer: windows end on a tick of Window/20, so that the
	// batches of users whose windows end together share one device read.
	Window time.Duration
	// BatchSize sends a user's batch at once when it holds this many
	// events (50).
	BatchSize int
	// QueueSize bounds the events waiting to be batched (100,000): beyond
	// it Enqueue drops (counted), it never blocks.
	QueueSize int
	// MaxPending bounds the notifications waiting for each provider
	// (1,000,000): what a provider outage holds until MaxAge.
	MaxPending int
	// Workers compose rounds of batches (reading the store and presence)
	// (8).
	Workers int
	// SendConcurrency is the sends in flight per provider (32).
	SendConcurrency int
	// SendTimeout bounds one send (10 s).
	SendTimeout time.Duration
	// MaxAge drops a notification not delivered this long after its
	// oldest event was enqueued (1 h).
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed send (200 ms,
	// 30 s), doubled per consecutive failure with jitter; a longer
	// Retry-After wins.
	MinBackoff, MaxBackoff time.Duration
	// Registerer gets the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Logger gets outages and failures (never tokens); nil: slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() error {
	if o.Directory == nil {
		return errors.New("push: notifier needs a directory")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.BatchSize, 50)
	def(&o.QueueSize, 100_000)
	def(&o.MaxPending, 1_000_000)
	def(&o.Workers, 8)
	def(&o.SendConcurrency, 32)
	defD(&o.Window, 2*time.Second)
	defD(&o.SendTimeout, 10*time.Second)
	defD(&o.MaxAge, time.Hour)
	defD(&o.MinBackoff, 200*time.Millisecond)
	defD(&o.MaxBackoff, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Stats are a Notifier's counts since New.
type Stats struct {
	// Enqueued events, and events Dropped because the queue was full.
	Enqueued, Dropped int64
	// Sent notifications (the service took them), Dead tokens removed,
	// Expired (not delivered within MaxAge), Failed (refused for good)
	// and Retries (sends tried again).
	Sent, Dead, Expired, Failed, Retries int64
}

// Notifier batches events per user and sends their notifications.
type Notifier struct {
	o       Options
	m       *metrics
	in      chan queued
	batches chan []*batch // rounds: batches ending together, at most roundUsers
	flushes chan chan struct{}
	lanes   map[store.Platform]*lane
	stop    chan struct{}
	ctx     context.Context // cancelled by Close: sends and store reads in flight end
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// work counts events and deliveries not finished yet (Drain).
	work  atomic.Int64
	stats struct{ enqueued, dropped, sent, dead, expired, failed, retries atomic.Int64 }
	logs  rateLog
}

// New starts a notifier; Close stops it.
func New(o Options) (*Notifier, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	n := &Notifier{o: o, in: make(chan queued, o.QueueSize), batches: make(chan []*batch, o.Workers*4),
		flushes: make(chan chan struct{}), lanes: make(map[store.Platform]*lane), stop: make(chan struct{}),
		logs: rateLog{log: o.Logger, every: 10 * time.Second}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(o.Registerer, func() float64 { return float64(n.work.Load()) })
	if err != nil {
		n.cancel()
		return nil, err
	}
	n.m = m
	for platform, p := range o.Providers {
		if p == nil {
			continue
		}
		l := &lane{n: n, p: p, platform: platform}
		l.cond = sync.NewCond(&l.mu)
		n.lanes[platform] = l
		for range o.SendConcurrency {
			n.wg.Add(1)
			go func() { defer n.wg.Done(); l.work() }()
		}
	}
	n.wg.Add(1 + o.Workers)
	go func() { defer n.wg.Done(); n.batchLoop() }()
	for range o.Workers {
		go func() { defer n.wg.Done(); n.composeLoop() }()
	}
	return n, nil
}

// Enqueue hands ev to the notifier without blocking: false when the queue
// is full (the event is dropped and counted).
func (n *Notifier) Enqueue(ev Event) bool {
	n.work.Add(1)
	select {
	case n.in <- queued{ev: ev, at: time.Now()}:
		n.stats.enqueued.Add(1)
		return true
	default:
		n.work.Add(-1)
		n.stats.dropped.Add(1)
		n.m.dropped.WithLabelValues("queue_full").Inc()
		return false
	}
}

// Stats returns the counts so far.
func (n *Notifier) Stats() Stats {
	s := &n.stats
	return Stats{Enqueued: s.enqueued.Load(), Dropped: s.dropped.Load(), Sent: s.sent.Load(), Dead: s.dead.Load(),
		Expired: s.expired.Load(), Failed: s.failed.Load(), Retries: s.retries.Load()}
}

// Drain sends every open batch now and waits until everything enqueued
// was sent, dropped or expired, or ctx ends.
func (n *Notifier) Drain(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case n.flushes <- ack:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stop:
		return errors.New("push: notifier closed")
	}
	select {
	case <-ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.work.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops the notifier at once: what is still queued is not sent
// (Drain first to send it).
func (n *Notifier) Close() {
	select {
	case <-n.stop:
		return
	default:
	}
	close(n.stop)
	n.cancel()
	for _, l := range n.lanes {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	}
	n.wg.Wait()
}
