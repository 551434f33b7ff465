package push

import (
	"context"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

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

// roundUsers is the most batches one round holds: the users whose
// devices one store read looks up.
const roundUsers = 32

// windowEnd is when a batch begun at at ends: Window later, rounded up
// to the next multiple of Window/20 (2 s windows end on a 100 ms tick),
// so that the batches of many users end together and are composed as one
// round, with one device lookup.
func (n *Notifier) windowEnd(at time.Time) time.Time {
	end := at.Add(n.o.Window)
	if g := n.o.Window / 20; g > 0 {
		if t := end.Truncate(g); t.Before(end) {
			end = t.Add(g)
		}
	}
	return end
}

// batchLoop gathers events per user and hands batches on, in rounds,
// when their window ends or one is full. Windows are all as long, so
// batches end in the order they began: a FIFO of open batches is the
// timer queue.
func (n *Notifier) batchLoop() {
	open := make(map[int64]*batch)
	var order []*batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// send hands a round of at most roundUsers batches to the composers.
	send := func(round []*batch) bool {
		for _, b := range round {
			b.done = true
			delete(open, b.user)
			n.m.batchSize.Observe(float64(len(b.events)))
		}
		select {
		case n.batches <- round:
			return true
		case <-n.stop:
			return false
		}
	}
	// sendAll hands bs on in rounds.
	sendAll := func(bs []*batch) bool {
		for len(bs) > 0 {
			k := min(len(bs), roundUsers)
			if !send(bs[:k:k]) {
				return false
			}
			bs = bs[k:]
		}
		return true
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
				b = &batch{user: q.ev.UserID, deadline: n.windowEnd(q.at)}
				open[b.user] = b
				order = append(order, b)
			}
			b.events = append(b.events, q)
			if len(b.events) >= n.o.BatchSize && !send([]*batch{b}) {
				return
			}
		case <-tick:
			now := time.Now()
			var due []*batch
			for len(order) > 0 && (order[0].done || !order[0].deadline.After(now)) {
				if b := order[0]; !b.done {
					due = append(due, b)
				}
				order = order[1:]
			}
			if !sendAll(due) {
				return
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
			var all []*batch
			for _, b := range order {
				if !b.done {
					all = append(all, b)
				}
			}
			if !sendAll(all) {
				return
			}
			order = nil
			close(ack)
		case <-n.stop:
			return
		}
	}
}

// composeLoop turns rounds of batches into deliveries.
func (n *Notifier) composeLoop() {
	for {
		select {
		case r := <-n.batches:
			n.composeRound(r)
		case <-n.stop:
			return
		}
	}
}

// composeRound reads the devices of the round's users in one store call,
// then composes each batch whose user has any.
func (n *Notifier) composeRound(round []*batch) {
	users := make([]int64, len(round))
	for i, b := range round {
		users[i] = b.user
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.o.SendTimeout)
	devices, err := n.o.Directory.DevicesOf(ctx, users)
	cancel()
	for _, b := range round {
		switch ds := devices[b.user]; {
		case err != nil:
			n.m.dropped.WithLabelValues("store").Add(float64(len(b.events)))
			n.logs.warn("push: devices not read; notifications dropped", "user", b.user, "err", err)
		case len(ds) == 0:
			n.m.skipped.WithLabelValues("no_device").Add(float64(len(b.events)))
		default:
			n.compose(b, ds)
		}
		n.work.Add(-int64(len(b.events)))
	}
}

// compose groups b's events into notifications (dropping messages read
// meanwhile), sets their priorities and queues one delivery per device.
func (n *Notifier) compose(b *batch, devices []store.Device) {
	ctx, cancel := context.WithTimeout(n.ctx, n.o.SendTimeout)
	defer cancel()
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
