package push

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
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
	// Window is how long a user's first event waits for more (2 s).
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
	// Workers compose batches (reading the store and presence) (8).
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
	batches chan *batch
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

// queued is an event with its enqueue time.
type queued struct {
	ev Event
	at time.Time
}

// batch is one user's events gathered in one window.
type batch struct {
	user     int64
	events   []queued
	deadline time.Time
	done     bool
}

// New starts a notifier; Close stops it.
func New(o Options) (*Notifier, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	n := &Notifier{o: o, in: make(chan queued, o.QueueSize), batches: make(chan *batch, o.Workers*4),
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

// batchLoop gathers events per user and hands each batch on when its
// window ends or it is full. Windows are all as long, so batches end in
// the order they began: a FIFO of open batches is the timer queue.
func (n *Notifier) batchLoop() {
	open := make(map[int64]*batch)
	var order []*batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	send := func(b *batch) bool {
		b.done = true
		delete(open, b.user)
		n.m.batchSize.Observe(float64(len(b.events)))
		select {
		case n.batches <- b:
			return true
		case <-n.stop:
			return false
		}
	}
	for {
		for len(order) > 0 && order[0].done {
			order = order[1:]
		}
		var tick <-chan time.Time
		if len(order) > 0 {
			timer.Reset(time.Until(order[0].deadline))
			tick = timer.C
		}
		select {
		case q := <-n.in:
			b := open[q.ev.UserID]
			if b == nil {
				b = &batch{user: q.ev.UserID, deadline: q.at.Add(n.o.Window)}
				open[b.user] = b
				order = append(order, b)
			}
			b.events = append(b.events, q)
			if len(b.events) >= n.o.BatchSize && !send(b) {
				return
			}
		case <-tick:
			now := time.Now()
			for len(order) > 0 && (order[0].done || !order[0].deadline.After(now)) {
				if b := order[0]; !b.done && !send(b) {
					return
				}
				order = order[1:]
			}
		case ack := <-n.flushes:
			// Take what is queued now into batches, then send them all.
			for more := true; more; {
				select {
				case q := <-n.in:
					b := open[q.ev.UserID]
					if b == nil {
						b = &batch{user: q.ev.UserID}
						open[b.user] = b
						order = append(order, b)
					}
					b.events = append(b.events, q)
				default:
					more = false
				}
			}
			for _, b := range order {
				if !b.done && !send(b) {
					return
				}
			}
			order = nil
			close(ack)
		case <-n.stop:
			return
		}
	}
}

// composeLoop turns batches into deliveries.
func (n *Notifier) composeLoop() {
	for {
		select {
		case b := <-n.batches:
			n.compose(b)
		case <-n.stop:
			return
		}
	}
}

// compose groups b's events into notifications (dropping messages read
// meanwhile), sets their priorities and queues one delivery per device.
func (n *Notifier) compose(b *batch) {
	defer n.work.Add(-int64(len(b.events)))
	ctx, cancel := context.WithTimeout(n.ctx, n.o.SendTimeout)
	defer cancel()
	devices, err := n.o.Directory.Devices(ctx, b.user)
	if err != nil {
		n.m.dropped.WithLabelValues("store").Add(float64(len(b.events)))
		n.logs.warn("push: devices not read; notifications dropped", "user", b.user, "err", err)
		return
	}
	if len(devices) == 0 {
		n.m.skipped.WithLabelValues("no_device").Add(float64(len(b.events)))
		return
	}
	for _, g := range n.groups(ctx, b) {
		created := g.created
		for _, d := range devices {
			l := n.lanes[d.Platform]
			if l == nil {
				n.m.skipped.WithLabelValues("no_provider").Inc()
				continue
			}
			title, body := g.render(d.Locale, d.Previews)
			nt := Notification{UserID: b.user, Kind: g.kind, Priority: g.priority, Title: title, Body: body,
				CollapseID: g.collapseID(), Count: len(g.events), Data: g.data(),
				Expires: created.Add(g.priority.TTL()), Created: created}
			l.push(delivery{dev: d, n: nt})
		}
	}
}

// timedGroup is a group with its oldest event's enqueue time.
type timedGroup struct {
	group
	created time.Time
}

// groups collapses b: one group for matches (high), one per conversation
// for messages not read yet (medium, low while the user is connected),
// one for likes (low). Events from a user now in a block relation with
// the recipient are left out.
func (n *Notifier) groups(ctx context.Context, b *batch) []timedGroup {
	var out []timedGroup
	byConv := make(map[int64]int)
	idx := func(kind Kind, conv int64, p Priority, at time.Time) *timedGroup {
		key := conv
		if kind != KindMessage {
			key = -int64(len(kind)) // one group per other kind
		}
		i, ok := byConv[key]
		if !ok {
			i = len(out)
			byConv[key] = i
			out = append(out, timedGroup{group: group{kind: kind, priority: p, conv: conv}, created: at})
		}
		return &out[i]
	}
	marks := make(map[int64]int64)
	var online, asked bool
	blocked := make(map[int64]bool)
	for _, q := range b.events {
		ev := q.ev
		bl, ok := blocked[ev.FromID]
		if !ok && ev.FromID != 0 {
			var err error
			if bl, err = n.o.Directory.Blocked(ctx, b.user, ev.FromID); err != nil {
				n.logs.warn("push: block relation not read; notifying", "user", b.user, "err", err)
			}
			blocked[ev.FromID] = bl
		}
		if bl {
			n.m.skipped.WithLabelValues("blocked").Inc()
			continue
		}
		switch ev.Kind {
		case KindMatch:
			g := idx(KindMatch, 0, High, q.at)
			g.events, g.from, g.conv = append(g.events, ev), ev.FromID, ev.ConversationID
		case KindLike:
			g := idx(KindLike, 0, Low, q.at)
			g.events = append(g.events, ev)
		case KindMessage:
			mark, ok := marks[ev.ConversationID]
			if !ok {
				m, err := n.o.Directory.ReadMark(ctx, b.user, ev.ConversationID)
				if err != nil {
					n.logs.warn("push: read mark not read; notifying anyway", "user", b.user, "err", err)
				}
				mark, marks[ev.ConversationID] = m, m
			}
			if ev.MessageID <= mark {
				n.m.skipped.WithLabelValues("read").Inc()
				continue
			}
			if !asked {
				asked = true
				if n.o.Presence != nil {
					on, err := n.o.Presence.Online(ctx, b.user)
					if err != nil {
						n.logs.warn("push: presence not read; treating the user as away", "user", b.user, "err", err)
					}
					online = on
				}
			}
			p := Medium
			if online {
				p = Low
			}
			g := idx(KindMessage, ev.ConversationID, p, q.at)
			g.events, g.from = append(g.events, ev), ev.FromID
		}
	}
	for i := range out {
		g := &out[i].group
		if g.kind == KindMatch && len(g.events) > 1 {
			g.conv = 0 // several matches: one card, no one conversation
		}
		if g.kind != KindLike && g.from != 0 && !g.priority.Quiet() {
			if p, err := n.o.Directory.GetProfile(ctx, g.from); err == nil {
				g.name = p.Name
			}
		}
	}
	return out
}

// delivery is one notification for one device.
type delivery struct {
	dev store.Device
	n   Notification
}

// lane sends to one provider: a FIFO of deliveries bounded by MaxPending,
// SendConcurrency workers, and the provider's state (failures in a row,
// no send before notBefore).
type lane struct {
	n        *Notifier
	p        Provider
	platform store.Platform

	mu        sync.Mutex
	cond      *sync.Cond
	q         []delivery
	head      int
	fails     int
	notBefore time.Time
	down      bool
	downSince time.Time
}

// push queues d, or drops it (counted) when MaxPending are waiting.
func (l *lane) push(d delivery) {
	l.mu.Lock()
	if len(l.q)-l.head >= l.n.o.MaxPending {
		l.mu.Unlock()
		l.n.m.dropped.WithLabelValues("pending_full").Inc()
		return
	}
	l.n.work.Add(1)
	l.q = append(l.q, d)
	l.cond.Signal()
	l.mu.Unlock()
}

// pop waits for a delivery; false once the notifier stops (what is
// still queued then is not sent: Close does not wait for a backlog).
func (l *lane) pop() (delivery, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		select {
		case <-l.n.stop:
			return delivery{}, false
		default:
		}
		if l.head < len(l.q) {
			break
		}
		l.cond.Wait()
	}
	d := l.q[l.head]
	l.q[l.head] = delivery{}
	l.head++
	if l.head > 1024 && l.head*2 >= len(l.q) {
		l.q = append([]delivery(nil), l.q[l.head:]...)
		l.head = 0
	}
	return d, true
}

func (l *lane) work() {
	for {
		d, ok := l.pop()
		if !ok {
			return
		}
		l.deliver(d)
		l.n.work.Add(-1)
	}
}

// deliver sends d until the provider takes it, refuses it for good, or
// it is older than MaxAge.
func (l *lane) deliver(d delivery) {
	n := l.n
	prio := d.n.Priority.String()
	for {
		select {
		case <-n.stop:
			return
		default:
		}
		l.mu.Lock()
		wait := time.Until(l.notBefore)
		l.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-n.stop:
				t.Stop()
				return
			}
		}
		if time.Since(d.n.Created) > n.o.MaxAge {
			n.stats.expired.Add(1)
			n.m.sent.WithLabelValues(l.p.Name(), prio, ResultExpired).Inc()
			n.m.dropped.WithLabelValues("expired").Inc()
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.o.SendTimeout)
		err := l.p.Send(ctx, d.dev, d.n)
		cancel()
		if err == nil {
			l.up()
			n.stats.sent.Add(1)
			n.m.sent.WithLabelValues(l.p.Name(), prio, ResultOK).Inc()
			n.m.delivery.WithLabelValues(l.p.Name(), prio).Observe(time.Since(d.n.Created).Seconds())
			return
		}
		se := asSendError(err)
		switch {
		case se.Dead:
			l.up()
			n.stats.dead.Add(1)
			n.m.sent.WithLabelValues(l.p.Name(), prio, ResultDead).Inc()
			ctx, cancel := context.WithTimeout(n.ctx, n.o.SendTimeout)
			if err := n.o.Directory.RemoveDeadDevice(ctx, d.dev.Platform, d.dev.Token); err != nil {
				n.logs.warn("push: dead token not removed", "provider", l.p.Name(), "user", d.dev.UserID, "err", err)
			}
			cancel()
			return
		case se.Retry:
			n.stats.retries.Add(1)
			n.m.sent.WithLabelValues(l.p.Name(), prio, ResultRetry).Inc()
			l.failed(se, err)
		default:
			l.up()
			n.stats.failed.Add(1)
			n.m.sent.WithLabelValues(l.p.Name(), prio, ResultError).Inc()
			n.logs.warn("push: notification refused", "provider", l.p.Name(), "user", d.dev.UserID, "status", se.Status, "reason", se.Reason)
			return
		}
	}
}

// failed pushes notBefore back after a retryable failure: the backoff of
// this many failures in a row, with jitter, or Retry-After when longer.
// The first failure of an outage is logged, the rest are counted.
func (l *lane) failed(se *SendError, err error) {
	o := l.n.o
	l.mu.Lock()
	l.fails++
	d := o.MinBackoff << min(l.fails-1, 20)
	if d > o.MaxBackoff || d <= 0 {
		d = o.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	if se.RetryAfter > d {
		d = se.RetryAfter
	}
	if nb := time.Now().Add(d); nb.After(l.notBefore) {
		l.notBefore = nb
	}
	first := !l.down
	if first {
		l.down, l.downSince = true, time.Now()
	}
	l.mu.Unlock()
	if first {
		o.Logger.Warn("push provider failing; holding notifications and retrying", "provider", l.p.Name(),
			"status", se.Status, "reason", se.Reason, "retry_in", d.Round(time.Millisecond), "err", errText(err))
	}
}

// up records a send the provider answered.
func (l *lane) up() {
	l.mu.Lock()
	if l.fails == 0 {
		l.mu.Unlock()
		return
	}
	wasDown, since := l.down, l.downSince
	l.fails, l.down, l.notBefore = 0, false, time.Time{}
	l.mu.Unlock()
	if wasDown {
		l.n.o.Logger.Info("push provider answering again", "provider", l.p.Name(), "after", time.Since(since).Round(time.Millisecond))
	}
}

// errText is err's message for a log; a *SendError says it all already.
func errText(err error) string {
	var se *SendError
	if errors.As(err, &se) {
		return ""
	}
	return err.Error()
}

// rateLog logs a warning at most once per every, counting the rest.
type rateLog struct {
	log    *slog.Logger
	every  time.Duration
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (r *rateLog) warn(msg string, args ...any) {
	r.mu.Lock()
	if time.Since(r.last) < r.every {
		r.missed++
		r.mu.Unlock()
		return
	}
	missed := r.missed
	r.last, r.missed = time.Now(), 0
	r.mu.Unlock()
	r.log.Warn(msg, append(args, "more_since_last_log", missed)...)
}
