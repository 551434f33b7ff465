package push

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

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
