package storetest

import (
	"fmt"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func testChat(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	var sent []store.Message
	for i := 0; i < 25; i++ {
		from := a
		if i%3 == 2 {
			from = b
		}
		m, created, err := send(t, s, from, conv, fmt.Sprintf("msg %d", i), fmt.Sprintf("c-%d", i))
		if err != nil || !created {
			t.Fatalf("send %d: created=%v err=%v", i, created, err)
		}
		if m.ID == 0 || m.SenderID != from || m.ConversationID != conv || m.CreatedAt.IsZero() || m.ConvSeq != int64(i+1) {
			t.Fatalf("message %+v", m)
		}
		sent = append(sent, m)
	}
	// Idempotent retry.
	again, created, err := send(t, s, a, conv, "msg 0 (retry)", "c-0")
	if err != nil || created || again.ID != sent[0].ID || again.Body != "msg 0" {
		t.Fatalf("retry: %+v created=%v err=%v", again, created, err)
	}
	// The same client id from the other sender is a different message.
	other, created, err := send(t, s, b, conv, "b's own c-0", "c-0")
	if err != nil || !created || other.ID == sent[0].ID {
		t.Fatalf("other sender same client id: %+v created=%v err=%v", other, created, err)
	}
	sent = append(sent, other)

	// Keyset paging, newest first, covers everything exactly once.
	var seen []int64
	before := int64(0)
	for page := 0; ; page++ {
		ms, err := s.ListMessages(ctx(t), b, conv, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		if page > 5 || len(ms) > 10 {
			t.Fatalf("paging runaway: page %d len %d", page, len(ms))
		}
		for _, m := range ms {
			seen = append(seen, m.ID)
		}
		before = ms[len(ms)-1].ID
	}
	if len(seen) != len(sent) {
		t.Fatalf("paged %d messages, sent %d", len(seen), len(sent))
	}
	for i := range seen {
		if seen[i] != sent[len(sent)-1-i].ID {
			t.Fatalf("page order at %d: got %d want %d", i, seen[i], sent[len(sent)-1-i].ID)
		}
	}

	// A cursor that is not a message of this conversation yields nothing.
	if ms, err := s.ListMessages(ctx(t), a, conv, other.ID+1000, 10); err != nil || len(ms) != 0 {
		t.Fatalf("unknown cursor: %d messages, %v", len(ms), err)
	}

	unread := func(u int64) int64 {
		t.Helper()
		cs, err := s.ListConversations(ctx(t), u)
		if err != nil || len(cs) != 1 {
			t.Fatalf("conversations of %d: %+v %v", u, cs, err)
		}
		if cs[0].LastMessage == nil || cs[0].LastMessage.ID != other.ID {
			t.Fatalf("last message of %d: %+v", u, cs[0].LastMessage)
		}
		return cs[0].UnreadCount
	}
	// a sent 17 (i%3 != 2 for i<25), b sent 8 + 1.
	if got := unread(a); got != 9 {
		t.Fatalf("unread for a = %d, want 9", got)
	}
	if got := unread(b); got != 17 {
		t.Fatalf("unread for b = %d, want 17", got)
	}
	if _, err := s.MarkRead(ctx(t), b, conv, sent[9].ID); err != nil {
		t.Fatal(err)
	}
	// Messages 10..24 from a: i%3 != 2 for i in 10..24 -> 10 of them.
	if got := unread(b); got != 10 {
		t.Fatalf("unread for b after read mark = %d, want 10", got)
	}
	// Marking an older message does not move the mark back.
	if _, err := s.MarkRead(ctx(t), b, conv, sent[1].ID); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 10 {
		t.Fatalf("read mark moved backwards: unread %d", got)
	}
	if _, err := s.MarkRead(ctx(t), b, conv, other.ID); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 0 {
		t.Fatalf("unread after reading all = %d", got)
	}
	_, err = s.MarkRead(ctx(t), b, conv, other.ID+1000)
	wantErr(t, err, store.ErrNotFound, "read mark on a missing message")
}

func testChatParticipants(t *testing.T, s store.Store) {
	a, _, conv := matchPair(t, s)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	m, _, err := send(t, s, a, conv, "hi", "x1")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = send(t, s, c, conv, "intrude", "x2")
	wantErr(t, err, store.ErrNotFound, "outsider send")
	_, err = s.ListMessages(ctx(t), c, conv, 0, 10)
	wantErr(t, err, store.ErrNotFound, "outsider read")
	_, err = s.MarkRead(ctx(t), c, conv, m.ID)
	wantErr(t, err, store.ErrNotFound, "outsider mark read")
	cs, _ := s.ListConversations(ctx(t), c)
	if len(cs) != 0 {
		t.Fatalf("outsider sees %+v", cs)
	}
	_, _, err = send(t, s, a, conv+1000, "hi", "x3")
	wantErr(t, err, store.ErrNotFound, "missing conversation")
}

// send stores one message through SendMessages.
func send(t *testing.T, s store.Store, from, conv int64, body, clientID string) (store.Message, bool, error) {
	t.Helper()
	r := store.SendOne(ctx(t), s, store.MessageDraft{SenderID: from, ConversationID: conv, Body: body, ClientMsgID: clientID})
	return r.Message, r.Created, r.Err
}
