// Package bustest is the conformance suite every eventbus implementation
// must pass, the way origin/store/storetest is for stores. An
// implementation's tests call Run with a Factory that builds its parts
// for one subtest: the origin's handle, edges, and the means to cut the
// transport and to kill an edge.
package bustest

import (
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/testutil"
)

// Origin is the origin's handle: it publishes and asks who is online.
type Origin interface {
	eventbus.Publisher
	eventbus.Presence
}

// Edge is an edge node's handle: it subscribes to the users connected to
// it and publishes their ephemeral events.
type Edge interface {
	eventbus.Subscriber
	eventbus.Publisher
}

// Harness builds one implementation's parts for one subtest. Everything it
// returns is closed when the subtest ends; closing an Edge twice must be
// harmless.
type Harness interface {
	// Origin returns the origin's handle.
	Origin(t *testing.T) Origin
	// Edge starts an edge node that delivers to h.
	Edge(t *testing.T, h eventbus.Handler) Edge
	// Cut breaks the transport under every edge and keeps it broken (the
	// Redis server killed, the origin's stream down) until restore is
	// called; the edges must notice and reconnect on their own.
	Cut(t *testing.T) (restore func())
	// Kill makes e die: its connections end and it cleans nothing up.
	Kill(t *testing.T, e Edge)
	// PresenceExpiry bounds how long a killed edge's users stay online.
	PresenceExpiry() time.Duration
}

// Factory returns a Harness for one subtest.
type Factory func(t *testing.T) Harness

// Run runs the whole suite against the implementation newHarness builds.
func Run(t *testing.T, newHarness Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"DeliversToSubscribedUsersOnly", testSubscribedOnly},
		{"SubscribeInEffectOnReturn", testSubscribeInEffect},
		{"OrderPerUser", testOrder},
		{"EphemeralAndDurable", testEphemeralAndDurable},
		{"UnsubscribeStopsDelivery", testUnsubscribe},
		{"TwoEdgesBothReceive", testTwoEdges},
		{"ReconnectedAfterCut", testCut},
		{"PresenceFollowsSubscriptions", testPresence},
		{"PresenceExpiresWhenEdgeDies", testPresenceExpiry},
		{"CloseReleasesEverything", testClose},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"RefusesWhatItCannotCarry", testRefusals},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newHarness(t)) })
	}
}

// wait is the liveness bound of every wait: generous for a loaded machine.
const wait = 30 * time.Second

// settle is how long a test waits to see that something does not arrive.
const settle = 300 * time.Millisecond

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

// recorder is a Handler that keeps what it receives.
type recorder struct {
	mu   sync.Mutex
	msgs []eventbus.Message
}

func (r *recorder) handle(m eventbus.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// of returns the messages received for user, in arrival order.
func (r *recorder) of(user int64) []eventbus.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []eventbus.Message
	for _, m := range r.msgs {
		if m.UserID == user {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// await waits until user has received n messages.
func (r *recorder) await(t *testing.T, user int64, n int) {
	t.Helper()
	testutil.Eventually(t, wait, fmt.Sprintf("%d messages for user %d", n, user), func() bool { return len(r.of(user)) >= n })
}

// event is a durable event's payload.
func event(user, seq int64) eventbus.Message {
	return eventbus.Message{UserID: user, Seq: seq, Payload: fmt.Appendf(nil, `{"seq":%d,"kind":"message","data":{"to":%d}}`, seq, user)}
}

// typing is an ephemeral message.
func typing(user, from int64) eventbus.Message {
	return eventbus.Message{UserID: user, Payload: fmt.Appendf(nil, `{"type":"typing","conversation_id":7,"user_id":%d}`, from)}
}

func subscribe(t *testing.T, e Edge, users ...int64) {
	t.Helper()
	if err := e.Subscribe(ctx(t), users...); err != nil {
		t.Fatalf("subscribe %v: %v", users, err)
	}
}

func unsubscribe(t *testing.T, e Edge, users ...int64) {
	t.Helper()
	if err := e.Unsubscribe(ctx(t), users...); err != nil {
		t.Fatalf("unsubscribe %v: %v", users, err)
	}
}

func publish(t *testing.T, p eventbus.Publisher, msgs ...eventbus.Message) {
	t.Helper()
	if err := p.Publish(ctx(t), msgs...); err != nil {
		t.Fatalf("publish %d messages: %v", len(msgs), err)
	}
}

func online(t *testing.T, o Origin, user int64) bool {
	t.Helper()
	on, err := o.Online(ctx(t), user)
	if err != nil {
		t.Fatalf("online(%d): %v", user, err)
	}
	return on
}

// seqs returns the messages' sequence numbers.
func seqs(msgs []eventbus.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func span(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func noReconnect(t *testing.T, e Edge) {
	t.Helper()
	select {
	case <-e.Reconnected():
		t.Error("Reconnected signalled though the transport never broke")
	default:
	}
}

// Many users subscribed in one call each get their message once; users
// not subscribed get nothing.
func testSubscribedOnly(t *testing.T, h Harness) {
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	users := span(1, 1500)
	subscribe(t, e, users...)
	var msgs []eventbus.Message
	for _, u := range append(users, span(2001, 2010)...) {
		msgs = append(msgs, event(u, 1))
	}
	publish(t, o, msgs...)
	testutil.Eventually(t, wait, "1,500 deliveries", func() bool { return r.count() >= len(users) })
	time.Sleep(settle)
	if n := r.count(); n != len(users) {
		t.Fatalf("%d deliveries, want %d (one per subscribed user)", n, len(users))
	}
	for _, u := range []int64{1, 750, 1500} {
		got := r.of(u)
		if len(got) != 1 || string(got[0].Payload) != string(event(u, 1).Payload) || got[0].Seq != 1 {
			t.Fatalf("user %d received %+v", u, got)
		}
	}
	noReconnect(t, e)
}

// Once Subscribe returns, a message published at once is delivered: an
// edge subscribes first and reads the origin's log second, and nothing may
// fall between.
func testSubscribeInEffect(t *testing.T, h Harness) {
	const rounds = 300
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	for u := int64(1); u <= rounds; u++ {
		subscribe(t, e, u)
		publish(t, o, event(u, 1))
	}
	testutil.Eventually(t, wait, "a message per subscription", func() bool { return r.count() >= rounds })
}

// Per user, messages arrive in publish order, from one call and from many.
func testOrder(t *testing.T, h Harness) {
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, 1, 2)
	var batch []eventbus.Message
	for s := int64(1); s <= 200; s++ {
		batch = append(batch, event(1, s), event(2, s))
	}
	publish(t, o, batch...)
	for s := int64(201); s <= 400; s++ {
		publish(t, o, event(1, s))
		publish(t, o, event(2, s))
	}
	for _, u := range []int64{1, 2} {
		r.await(t, u, 400)
		if got := seqs(r.of(u)); !slices.Equal(got, span(1, 400)) {
			t.Fatalf("user %d: seqs %v, want 1…400 in order", u, got)
		}
	}
	noReconnect(t, e)
}

// Ephemeral (seq 0) and durable messages arrive alike, payloads intact,
// from the origin and from an edge (which receives its own publishes).
func testEphemeralAndDurable(t *testing.T, h Harness) {
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, 5)
	want := []eventbus.Message{typing(5, 6), event(5, 12), typing(5, 8)}
	publish(t, o, want[0], want[1])
	r.await(t, 5, 2)
	publish(t, e, want[2])
	r.await(t, 5, 3)
	got := r.of(5)
	for i := range want {
		if got[i].UserID != 5 || got[i].Seq != want[i].Seq || string(got[i].Payload) != string(want[i].Payload) {
			t.Fatalf("message %d: got {%d %d %s}, want {%d %d %s}", i, got[i].UserID, got[i].Seq, got[i].Payload, 5, want[i].Seq, want[i].Payload)
		}
	}
}

// Once Unsubscribe returns nothing more arrives for the user; subscribing
// again works.
func testUnsubscribe(t *testing.T, h Harness) {
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, 1, 2)
	publish(t, o, event(1, 1))
	r.await(t, 1, 1)
	unsubscribe(t, e, 1)
	publish(t, o, event(1, 2), event(2, 1))
	r.await(t, 2, 1)
	time.Sleep(settle)
	if got := seqs(r.of(1)); !slices.Equal(got, []int64{1}) {
		t.Fatalf("user 1 after unsubscribe: seqs %v, want [1]", got)
	}
	unsubscribe(t, e, 1) // unsubscribing again is harmless
	subscribe(t, e, 1)
	publish(t, o, event(1, 3))
	r.await(t, 1, 2)
	if got := seqs(r.of(1)); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("user 1 after subscribing again: seqs %v, want [1 3]", got)
	}
}

// Two edges subscribed to one user both receive the origin's messages and
// each other's ephemeral ones; one unsubscribing leaves the other.
func testTwoEdges(t *testing.T, h Harness) {
	o := h.Origin(t)
	var ra, rb recorder
	a, b := h.Edge(t, ra.handle), h.Edge(t, rb.handle)
	subscribe(t, a, 3)
	subscribe(t, b, 3)
	publish(t, o, event(3, 1))
	publish(t, a, typing(3, 4))
	for _, r := range []*recorder{&ra, &rb} {
		r.await(t, 3, 2)
	}
	unsubscribe(t, b, 3)
	publish(t, b, event(3, 2))
	ra.await(t, 3, 3)
	time.Sleep(settle)
	if got, want := seqs(ra.of(3)), []int64{1, 0, 2}; !slices.Equal(got, want) {
		t.Fatalf("edge a: seqs %v, want %v", got, want)
	}
	if got, want := seqs(rb.of(3)), []int64{1, 0}; !slices.Equal(got, want) {
		t.Fatalf("edge b: seqs %v, want %v", got, want)
	}
}

// After the transport breaks, an edge reconnects by itself, subscribes
// every wanted user again (those it was asked for meanwhile too), signals
// Reconnected, and delivery resumes.
func testCut(t *testing.T, h Harness) {
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, 1)
	publish(t, o, event(1, 1))
	r.await(t, 1, 1)
	noReconnect(t, e)

	restore := h.Cut(t)
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	err := e.Subscribe(short, 2)
	cancel()
	if err == nil {
		t.Fatal("Subscribe succeeded while the transport was cut")
	}
	restore()
	select {
	case <-e.Reconnected():
	case <-time.After(wait):
		t.Fatal("no Reconnected within 30 s of the transport's return")
	}
	// The origin's own connection may take a moment to come back too.
	testutil.Eventually(t, wait, "a publish after the cut", func() bool {
		return o.Publish(ctx(t), event(1, 2), event(2, 1)) == nil
	})
	r.await(t, 1, 2)
	r.await(t, 2, 1)
	testutil.Eventually(t, wait, "presence after the cut", func() bool { return online(t, o, 1) && online(t, o, 2) })
}

// A user is online while some edge subscribes to them.
func testPresence(t *testing.T, h Harness) {
	o := h.Origin(t)
	a, b := h.Edge(t, func(eventbus.Message) {}), h.Edge(t, func(eventbus.Message) {})
	if online(t, o, 1) {
		t.Fatal("user 1 online before any subscription")
	}
	subscribe(t, a, 1, 2)
	if !online(t, o, 1) || !online(t, o, 2) {
		t.Fatal("users 1 and 2 not online once subscribed")
	}
	subscribe(t, b, 1)
	unsubscribe(t, a, 1, 2)
	if !online(t, o, 1) {
		t.Fatal("user 1 offline though edge b still subscribes")
	}
	if online(t, o, 2) {
		t.Fatal("user 2 online after its only edge unsubscribed")
	}
	unsubscribe(t, b, 1)
	if online(t, o, 1) {
		t.Fatal("user 1 online after every edge unsubscribed")
	}
}

// An edge that dies without unsubscribing takes its users offline within
// the presence expiry; a live edge's users stay online past it.
func testPresenceExpiry(t *testing.T, h Harness) {
	o := h.Origin(t)
	a, b := h.Edge(t, func(eventbus.Message) {}), h.Edge(t, func(eventbus.Message) {})
	subscribe(t, a, 1)
	subscribe(t, b, 2)
	h.Kill(t, a)
	start := time.Now()
	testutil.Eventually(t, h.PresenceExpiry()+wait, "user 1 offline after its edge died", func() bool { return !online(t, o, 1) })
	if took := time.Since(start); took > 2*h.PresenceExpiry()+5*time.Second {
		t.Errorf("user 1 went offline %s after its edge died; the expiry is %s", took, h.PresenceExpiry())
	}
	time.Sleep(h.PresenceExpiry() - time.Since(start) + settle)
	if !online(t, o, 2) {
		t.Fatal("user 2 offline though its edge lives (presence not renewed)")
	}
}

// Close ends delivery and presence, releases the edge's goroutines, and
// leaves an edge that refuses further work.
func testClose(t *testing.T, h Harness) {
	o := h.Origin(t)
	// The origin's client may start its background work on first use.
	publish(t, o, event(9, 1))
	online(t, o, 9)
	time.Sleep(settle)
	before := runtime.NumGoroutine()
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, 1)
	publish(t, o, event(1, 1))
	r.await(t, 1, 1)
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	testutil.Eventually(t, wait, "user 1 offline after Close", func() bool { return !online(t, o, 1) })
	publish(t, o, event(1, 2))
	time.Sleep(settle)
	if n := len(r.of(1)); n != 1 {
		t.Fatalf("%d messages after Close, want the 1 before", n)
	}
	if err := e.Subscribe(ctx(t), 2); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	for deadline := time.Now().Add(wait); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines 30 s after Close, %d before the edge started:\n%s", runtime.NumGoroutine(), before, stacks.String())
		}
	}
}

// Concurrent publishers: every message arrives once, and each publisher's
// messages to a user arrive in its order.
func testConcurrentPublishers(t *testing.T, h Harness) {
	const publishers, each, users = 8, 100, 4
	o := h.Origin(t)
	var r recorder
	e := h.Edge(t, r.handle)
	subscribe(t, e, span(1, users)...)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				m := eventbus.Message{UserID: int64(1 + i%users), Payload: fmt.Appendf(nil, `{"p":%d,"i":%d}`, p, i)}
				if err := o.Publish(context.Background(), m); err != nil {
					t.Errorf("publisher %d: %v", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	testutil.Eventually(t, wait, "every message", func() bool { return r.count() >= publishers*each })
	time.Sleep(settle)
	if n := r.count(); n != publishers*each {
		t.Fatalf("%d messages, want %d", n, publishers*each)
	}
	for u := int64(1); u <= users; u++ {
		last := make(map[int]int)
		for _, m := range r.of(u) {
			var p, i int
			if _, err := fmt.Sscanf(string(m.Payload), `{"p":%d,"i":%d}`, &p, &i); err != nil {
				t.Fatalf("payload %s: %v", m.Payload, err)
			}
			if prev, ok := last[p]; ok && i <= prev {
				t.Fatalf("user %d: publisher %d's message %d after its %d", u, p, i, prev)
			}
			last[p] = i
		}
	}
}

// Users and messages the bus cannot carry are refused alike by every
// implementation: a user id is positive, a seq not negative, a payload at
// most MaxPayload bytes.
func testRefusals(t *testing.T, h Harness) {
	o := h.Origin(t)
	e := h.Edge(t, func(eventbus.Message) {})
	big := append(append([]byte(`"`), make([]byte, eventbus.MaxPayload)...), '"')
	for i := range big[1 : len(big)-1] {
		big[1+i] = 'x'
	}
	for _, m := range []eventbus.Message{
		{UserID: 0, Payload: []byte(`{}`)}, {UserID: -1, Payload: []byte(`{}`)},
		{UserID: 1, Seq: -1, Payload: []byte(`{}`)}, {UserID: 1, Payload: big},
	} {
		for name, p := range map[string]eventbus.Publisher{"origin": o, "edge": e} {
			if err := p.Publish(ctx(t), m); err == nil {
				t.Errorf("the %s published user %d seq %d with %d payload bytes", name, m.UserID, m.Seq, len(m.Payload))
			}
		}
	}
	for _, u := range []int64{0, -5} {
		if err := e.Subscribe(ctx(t), 1, u); err == nil {
			t.Errorf("subscribed user %d", u)
		}
	}
}
