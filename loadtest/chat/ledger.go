package chat

import (
	"sort"
	"sync"
	"time"

	"github.com/spark-edge/spark/loadtest"
)

// Ledger records every message of a run by its client_msg_id — who sent
// it, to whom, when, whether the origin confirmed it stored, and every
// delivery — so that lost, duplicated and misdelivered messages are counted
// exactly, not sampled. It is safe for concurrent use.
type Ledger struct {
	mu          sync.Mutex
	entries     map[string]*entry
	pending     map[int64]map[string]struct{} // by sender: neither confirmed nor received
	outstanding int                           // entries not yet received
	resent      int64
}

type entry struct {
	sender, recipient int64
	sentAt            time.Time // first send (monotonic)
	lastSend          time.Time // latest send
	stored            bool      // a sent frame confirmed it
	received          int       // deliveries to the recipient
	misdelivered      int       // deliveries to anyone else
	drops             int64     // the pair's drop count at the first send
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{entries: map[string]*entry{}, pending: map[int64]map[string]struct{}{}}
}

// Sent records a send of id from sender to recipient at now; drops is the
// pair's count of dropped connections so far (see Received). A send of an id
// already recorded is a resend: counted, its first send time kept.
func (l *Ledger) Sent(id string, sender, recipient int64, now time.Time, drops int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[id]; ok {
		l.resent++
		e.lastSend = now
		return
	}
	l.entries[id] = &entry{sender: sender, recipient: recipient, sentAt: now, lastSend: now, drops: drops}
	l.outstanding++
	p := l.pending[sender]
	if p == nil {
		p = map[string]struct{}{}
		l.pending[sender] = p
	}
	p[id] = struct{}{}
}

// Stored records the origin's confirmation of id (a sent frame) and returns
// how long after the first send it came; ok is false for an id the ledger
// does not know or one already confirmed.
func (l *Ledger) Stored(id string, now time.Time) (d time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[id]
	if e == nil || e.stored {
		return 0, false
	}
	e.stored = true
	delete(l.pending[e.sender], id)
	return now.Sub(e.sentAt), true
}

// Delivery is what the ledger says of one delivery.
type Delivery struct {
	// Known is false for an id the ledger never sent (nothing else is set).
	Known bool
	// First is the first delivery of the message to its recipient.
	First bool
	// Misdelivered: to a user who is not the recipient.
	Misdelivered bool
	// Latency is from the first send.
	Latency time.Duration
	// AfterDrop: the pair's drop count changed since the send (the message
	// waited for a resume).
	AfterDrop bool
}

// Received records a delivery of id to user at now; drops is the pair's
// drop count now.
func (l *Ledger) Received(id string, user int64, now time.Time, drops int64) Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[id]
	if e == nil {
		return Delivery{}
	}
	if user != e.recipient {
		e.misdelivered++
		return Delivery{Known: true, Misdelivered: true}
	}
	e.received++
	if e.received == 1 {
		l.outstanding--
		delete(l.pending[e.sender], id)
	}
	return Delivery{Known: true, First: e.received == 1, Latency: now.Sub(e.sentAt), AfterDrop: drops != e.drops}
}

// Unconfirmed returns sender's messages last sent before cutoff that are
// neither confirmed stored nor received: the ones to send again (same id:
// the origin stores a client_msg_id once), sorted.
func (l *Ledger) Unconfirmed(sender int64, cutoff time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.pending[sender] {
		if l.entries[id].lastSend.Before(cutoff) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Pending reports whether sender's message id is neither confirmed nor
// received.
func (l *Ledger) Pending(sender int64, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.pending[sender][id]
	return ok
}

// Outstanding is the number of messages not yet received by their
// recipient: the drain ends when it reaches 0.
func (l *Ledger) Outstanding() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outstanding
}

// Tally counts the ledger. A message received by its recipient was stored,
// confirmed or not (the sent frame may have been lost with a dropped
// connection); one never confirmed nor received is unconfirmed, not lost;
// one stored for a recipient who is offline at the end (offline, may be
// nil) is counted apart: it waits in the recipient's log.
func (l *Ledger) Tally(offline func(user int64) bool) loadtest.MessageLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := loadtest.MessageLedger{Sent: int64(len(l.entries)), Resent: l.resent}
	for _, e := range l.entries {
		stored := e.stored || e.received > 0
		if stored {
			t.Stored++
		}
		if e.received > 0 {
			t.Received++
		}
		if e.received > 1 {
			t.Duplicated += int64(e.received - 1)
		}
		switch {
		case stored && e.received == 0 && offline != nil && offline(e.recipient):
			t.RecipientOffline++
		case stored && e.received == 0:
			t.Lost++
		}
		if !stored {
			t.Unconfirmed++
		}
		t.Misdelivered += int64(e.misdelivered)
	}
	return t
}
