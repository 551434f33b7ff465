package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

// eventsOf returns every kept event of user (since 0), failing the test on
// an error.
func eventsOf(t *testing.T, s store.Store, user int64) store.EventPage {
	t.Helper()
	p, err := s.Events(ctx(t), user, 0, 100_000)
	if err != nil {
		t.Fatalf("events of %d: %v", user, err)
	}
	return p
}

// checkLog checks a user's whole log: seqs 1..n without gaps, LastSeq n,
// and the kinds in order.
func checkLog(t *testing.T, s store.Store, user int64, kinds ...store.EventKind) []store.Event {
	t.Helper()
	p := eventsOf(t, s, user)
	if p.LastSeq != int64(len(p.Events)) || len(p.Events) != len(kinds) {
		t.Fatalf("log of %d: %d events, last_seq %d, want %d events %v", user, len(p.Events), p.LastSeq, len(kinds), kinds)
	}
	for i, e := range p.Events {
		if e.Seq != int64(i+1) || e.Kind != kinds[i] || e.UserID != user || e.At.IsZero() {
			t.Fatalf("log of %d, event %d: %+v, want seq %d kind %s", user, i, e, i+1, kinds[i])
		}
	}
	return p.Events
}

// sameEvents checks that what a write returned is what the log holds,
// byte for byte.
func sameEvents(t *testing.T, s store.Store, returned []store.Event) {
	t.Helper()
	for _, r := range returned {
		p, err := s.Events(ctx(t), r.UserID, r.Seq-1, 1)
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("event %d of %d: %+v %v", r.Seq, r.UserID, p, err)
		}
		got, _ := p.Events[0].JSON()
		want, _ := r.JSON()
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d of %d: log has %s, the write returned %s", r.Seq, r.UserID, got, want)
		}
	}
}

func decodeData[T any](t *testing.T, e store.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("data of %s event %s: %v", e.Kind, e.Data, err)
	}
	return v
}

// testEventsFollowWrites: each kind of write appends its events to the
// right users' logs only, in order, gapless, with the design's data, and
// returns exactly what it appended.
func testEventsFollowWrites(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", nil, nil)
	b := mk(t, s, "b", 30, "woman", nil, nil)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	if r, err := s.Swipe(ctx(t), a, b, store.Like); err != nil || len(r.Events) != 0 {
		t.Fatalf("one-sided like: %+v %v", r, err)
	}
	r, err := s.Swipe(ctx(t), b, a, store.Like)
	if err != nil || r.Match == nil || len(r.Events) != 2 {
		t.Fatalf("mutual like: %+v %v", r, err)
	}
	sameEvents(t, s, r.Events)
	match := *r.Match
	for _, u := range []int64{a, b} {
		e := checkLog(t, s, u, store.EventMatch)[0]
		d := decodeData[store.MatchEventData](t, e)
		if d.MatchID != match.ID || d.ConversationID != match.ConversationID || d.PeerID != a+b-u || !d.CreatedAt.Equal(match.CreatedAt) {
			t.Fatalf("match event of %d: %+v, match %+v", u, d, match)
		}
	}
	sent := store.SendOne(ctx(t), s, store.MessageDraft{SenderID: a, ConversationID: match.ConversationID, Body: "hi", ClientMsgID: "m1"})
	if sent.Err != nil || len(sent.Events) != 2 || sent.Events[0].UserID != a || sent.Events[1].UserID != b {
		t.Fatalf("send: %+v", sent)
	}
	sameEvents(t, s, sent.Events)
	for _, u := range []int64{a, b} {
		e := checkLog(t, s, u, store.EventMatch, store.EventMessage)[1]
		m := decodeData[store.Message](t, e)
		if m.ID != sent.Message.ID || m.ConvSeq != 1 || m.SenderID != a || m.Body != "hi" || m.ClientMsgID != "m1" ||
			m.ConversationID != match.ConversationID || !m.CreatedAt.Equal(sent.Message.CreatedAt) {
			t.Fatalf("message event of %d: %+v, sent %+v", u, m, sent.Message)
		}
	}
	reply, _, err := send(t, s, b, match.ConversationID, "hello", "m1")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.MarkRead(ctx(t), a, match.ConversationID, reply.ID)
	if err != nil || len(evs) != 2 || evs[0].UserID != a || evs[1].UserID != b {
		t.Fatalf("mark read: %+v %v", evs, err)
	}
	sameEvents(t, s, evs)
	d := decodeData[store.ReadEventData](t, evs[1])
	if d != (store.ReadEventData{ConversationID: match.ConversationID, ReaderID: a, MessageID: reply.ID}) {
		t.Fatalf("read event %+v", d)
	}
	_, evs, err = s.Unmatch(ctx(t), b, match.ID)
	if err != nil || len(evs) != 2 {
		t.Fatalf("unmatch: %+v %v", evs, err)
	}
	sameEvents(t, s, evs)
	for _, u := range []int64{a, b} {
		e := checkLog(t, s, u, store.EventMatch, store.EventMessage, store.EventMessage, store.EventRead, store.EventUnmatch)[4]
		if d := decodeData[store.UnmatchEventData](t, e); d != (store.UnmatchEventData{MatchID: match.ID, ConversationID: match.ConversationID, PeerID: a + b - u}) {
			t.Fatalf("unmatch event of %d: %+v", u, d)
		}
	}
	checkLog(t, s, c)
}

// testBlockEndingMatchAppends: a block that ends a match tells both users;
// one without a match appends nothing.
func testBlockEndingMatchAppends(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	evs, err := s.Block(ctx(t), c, a)
	if err != nil || len(evs) != 0 {
		t.Fatalf("block without a match: %+v %v", evs, err)
	}
	evs, err = s.Block(ctx(t), b, a)
	if err != nil || len(evs) != 2 {
		t.Fatalf("block ending a match: %+v %v", evs, err)
	}
	sameEvents(t, s, evs)
	for _, u := range []int64{a, b} {
		e := checkLog(t, s, u, store.EventMatch, store.EventUnmatch)[1]
		if d := decodeData[store.UnmatchEventData](t, e); d.ConversationID != conv || d.PeerID != a+b-u {
			t.Fatalf("unmatch event of %d: %+v", u, d)
		}
	}
	if evs, err := s.Block(ctx(t), a, b); err != nil || len(evs) != 0 {
		t.Fatalf("block after the match ended: %+v %v", evs, err)
	}
	checkLog(t, s, c)
}

// testFailedWritesAppendNothing: refused writes, retries and no-op writes
// leave every log as it was.
func testFailedWritesAppendNothing(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	m, _, err := send(t, s, a, conv, "first", "x1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx(t), b, conv, m.ID); err != nil {
		t.Fatal(err)
	}
	before := map[int64]int64{a: eventsOf(t, s, a).LastSeq, b: eventsOf(t, s, b).LastSeq, c: 0}
	if r := store.SendOne(ctx(t), s, store.MessageDraft{SenderID: a, ConversationID: conv, Body: "again", ClientMsgID: "x1"}); r.Err != nil || r.Created || len(r.Events) != 0 {
		t.Fatalf("retry: %+v", r)
	}
	if _, _, err := send(t, s, c, conv, "intrude", "x2"); err == nil {
		t.Fatal("outsider send stored")
	}
	if _, _, err := send(t, s, a, conv+1000, "nowhere", "x3"); err == nil {
		t.Fatal("send to a missing conversation stored")
	}
	for _, mr := range []struct{ who, msg int64 }{{b, m.ID}, {b, m.ID + 1000}, {c, m.ID}} {
		if evs, _ := s.MarkRead(ctx(t), mr.who, conv, mr.msg); len(evs) != 0 {
			t.Fatalf("read mark %+v appended %+v", mr, evs)
		}
	}
	if r, err := s.Swipe(ctx(t), a, b, store.Like); err != nil || len(r.Events) != 0 {
		t.Fatalf("repeated swipe of a match: %+v %v", r, err)
	}
	if _, evs, err := s.Unmatch(ctx(t), c, 1); err == nil || len(evs) != 0 {
		t.Fatalf("outsider unmatch: %+v %v", evs, err)
	}
	for u, last := range before {
		if got := eventsOf(t, s, u).LastSeq; got != last {
			t.Fatalf("user %d: last_seq %d after refused writes, was %d", u, got, last)
		}
	}
}

// testEventsPaging: since and limit page through a log; the newest seq
// comes with every page; asking beyond it is ErrGone.
func testEventsPaging(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	for i := 0; i < 9; i++ {
		if _, _, err := send(t, s, a, conv, fmt.Sprint(i), fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int64
	for since := int64(0); ; {
		p, err := s.Events(ctx(t), b, since, 4)
		if err != nil {
			t.Fatal(err)
		}
		if p.LastSeq != 10 || len(p.Events) > 4 {
			t.Fatalf("page after %d: %d events, last_seq %d", since, len(p.Events), p.LastSeq)
		}
		if len(p.Events) == 0 {
			break
		}
		for _, e := range p.Events {
			seen = append(seen, e.Seq)
		}
		since = p.Events[len(p.Events)-1].Seq
	}
	if !equalIDs(seen, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("paged seqs %v", seen)
	}
	_, err := s.Events(ctx(t), b, 11, 10)
	wantErr(t, err, store.ErrGone, "since beyond the log")
	var gone *store.GoneError
	if !errors.As(err, &gone) || gone.LastSeq != 10 || gone.Since != 11 {
		t.Fatalf("gone error %#v", err)
	}
	if p, err := s.Events(ctx(t), mk(t, s, "new", 30, "man", nil, nil), 0, 10); err != nil || p.LastSeq != 0 || len(p.Events) != 0 {
		t.Fatalf("a new user's log: %+v %v", p, err)
	}
}

// testEventRetention: pruning keeps the newest KeepLast or everything
// younger than KeepFor, whichever is more; asking from before what is kept
// is ErrGone.
func testEventRetention(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	for i := 0; i < 7; i++ {
		if _, _, err := send(t, s, b, conv, "m", fmt.Sprint("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	quiet := mk(t, s, "quiet", 30, "man", nil, nil)
	now := time.Now()
	if n, err := s.PruneEvents(ctx(t), store.Retention{KeepLast: 3, KeepFor: time.Hour, Now: now}); err != nil || n != 0 {
		t.Fatalf("pruning young events: %d %v", n, err)
	}
	if n, err := s.PruneEvents(ctx(t), store.Retention{KeepLast: 3, KeepFor: time.Hour, Now: now.Add(2 * time.Hour)}); err != nil || n != 10 {
		t.Fatalf("pruning old events: %d deleted, %v; want 5 of a's and 5 of b's", n, err)
	}
	for _, u := range []int64{a, b} {
		_, err := s.Events(ctx(t), u, 0, 10)
		wantErr(t, err, store.ErrGone, "events from before retention")
		_, err = s.Events(ctx(t), u, 4, 10)
		wantErr(t, err, store.ErrGone, "events from just before retention")
		p, err := s.Events(ctx(t), u, 5, 10)
		if err != nil || p.LastSeq != 8 || len(p.Events) != 3 || p.Events[0].Seq != 6 {
			t.Fatalf("kept events of %d: %+v %v", u, p, err)
		}
	}
	if n, err := s.PruneEvents(ctx(t), store.Retention{KeepLast: 3, KeepFor: time.Hour, Now: now.Add(2 * time.Hour)}); err != nil || n != 0 {
		t.Fatalf("second prune: %d %v", n, err)
	}
	if p, err := s.Events(ctx(t), quiet, 0, 10); err != nil || p.LastSeq != 0 {
		t.Fatalf("a user without events after pruning: %+v %v", p, err)
	}
	// Appending goes on after the kept run.
	if _, _, err := send(t, s, a, conv, "after", "after"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Events(ctx(t), a, 8, 10); err != nil || len(p.Events) != 1 || p.Events[0].Seq != 9 {
		t.Fatalf("append after pruning: %+v %v", p, err)
	}
}

// testConcurrentSendsBothWays: both participants send at once, read marks
// move meanwhile: no deadlock, no error, and each log holds every message
// once, gapless, in conversation order (conv_seq follows commit order).
func testConcurrentSendsBothWays(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	const perSender = 40
	var wg sync.WaitGroup
	errs := make(chan error, 3*perSender)
	for _, from := range []int64{a, b} {
		wg.Add(1)
		go func(from int64) {
			defer wg.Done()
			for i := 0; i < perSender; i++ {
				m, _, err := send(t, s, from, conv, "x", fmt.Sprint(from, "-", i))
				if err != nil {
					errs <- err
					return
				}
				if i%4 == 0 { // the sender also reads what they see
					if _, err := s.MarkRead(ctx(t), a+b-from, conv, m.ID); err != nil {
						errs <- err
					}
				}
			}
		}(from)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range []int64{a, b} {
		p := eventsOf(t, s, u)
		var lastConvSeq, lastID int64
		messages := 0
		for i, e := range p.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("log of %d: seq %d at %d", u, e.Seq, i)
			}
			if e.Kind != store.EventMessage {
				continue
			}
			m := decodeData[store.Message](t, e)
			if m.ConvSeq != lastConvSeq+1 || m.ID <= lastID {
				t.Fatalf("log of %d: message %+v after conv_seq %d, id %d", u, m, lastConvSeq, lastID)
			}
			lastConvSeq, lastID = m.ConvSeq, m.ID
			messages++
		}
		if messages != 2*perSender || p.LastSeq != int64(len(p.Events)) {
			t.Fatalf("log of %d: %d messages of %d, %d events, last_seq %d", u, messages, 2*perSender, len(p.Events), p.LastSeq)
		}
	}
}

// testSendBatch: one batch mixing new messages in two conversations, a
// retry of a stored message, the same new message twice, and refused ones:
// each gets its own result, and conv_seq follows the batch's order.
func testSendBatch(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	conv2 := matchUsers(t, s, a, c).ConversationID
	stored, _, err := send(t, s, a, conv, "stored", "s1")
	if err != nil {
		t.Fatal(err)
	}
	d := func(from, cv int64, body, cid string) store.MessageDraft {
		return store.MessageDraft{SenderID: from, ConversationID: cv, Body: body, ClientMsgID: cid}
	}
	res := s.SendMessages(ctx(t), []store.MessageDraft{
		d(b, conv, "one", "b1"),
		d(c, conv, "intruder", "c1"),     // not a participant
		d(a, conv, "retry", "s1"),        // stored before
		d(a, conv2, "to c", "a1"),        // another conversation
		d(b, conv, "one again", "b1"),    // the same as the first
		d(a, conv, "two", "a2"),          //
		d(a, conv+1000, "nowhere", "n1"), // no such conversation
		d(c, conv2, "from c", "c2"),      //
	})
	if len(res) != 8 {
		t.Fatalf("%d results for 8 drafts", len(res))
	}
	for _, i := range []int{1, 6} {
		wantErr(t, res[i].Err, store.ErrNotFound, fmt.Sprint("refused draft ", i))
	}
	for _, i := range []int{0, 2, 3, 4, 5, 7} {
		if res[i].Err != nil {
			t.Fatalf("draft %d: %v", i, res[i].Err)
		}
	}
	want := []struct {
		i       int
		created bool
		convSeq int64
		body    string
	}{{0, true, 2, "one"}, {2, false, 1, "stored"}, {3, true, 1, "to c"}, {4, false, 2, "one"}, {5, true, 3, "two"}, {7, true, 2, "from c"}}
	for _, w := range want {
		got := res[w.i]
		if got.Created != w.created || got.Message.ConvSeq != w.convSeq || got.Message.Body != w.body || (len(got.Events) == 2) != w.created {
			t.Fatalf("draft %d: %+v, want created %v conv_seq %d body %q", w.i, got, w.created, w.convSeq, w.body)
		}
	}
	if res[4].Message.ID != res[0].Message.ID || res[2].Message.ID != stored.ID {
		t.Fatalf("retries got other messages: %+v", res)
	}
	for _, i := range []int{0, 3, 5, 7} {
		sameEvents(t, s, res[i].Events)
	}
	checkLog(t, s, a, store.EventMatch, store.EventMatch, store.EventMessage, store.EventMessage, store.EventMessage, store.EventMessage, store.EventMessage)
	checkLog(t, s, b, store.EventMatch, store.EventMessage, store.EventMessage, store.EventMessage)
	checkLog(t, s, c, store.EventMatch, store.EventMessage, store.EventMessage)
	ms, err := s.ListMessages(ctx(t), b, conv, 0, 10)
	if err != nil || len(ms) != 3 || ms[0].Body != "two" || ms[1].Body != "one" || ms[0].ConvSeq != 3 {
		t.Fatalf("history after the batch: %+v %v", ms, err)
	}
}
