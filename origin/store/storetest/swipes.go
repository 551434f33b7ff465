package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func testSwipe(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", pt(1, 1), nil)
	b := mk(t, s, "b", 30, "woman", pt(1, 1.01), nil)
	c := mk(t, s, "c", 30, "woman", pt(1, 1.02), nil)
	r, err := s.Swipe(ctx(t), a, b, store.Like)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Match != nil {
		t.Fatalf("first like: %+v", r)
	}
	r, err = s.Swipe(ctx(t), a, b, store.Like)
	if err != nil || r.Created || r.Match != nil {
		t.Fatalf("repeated like: %+v, %v", r, err)
	}
	_, err = s.Swipe(ctx(t), a, b, store.Pass)
	wantErr(t, err, store.ErrConflict, "changing a swipe")
	_, err = s.Swipe(ctx(t), a, a, store.Like)
	wantErr(t, err, store.ErrInvalid, "self swipe")
	_, err = s.Swipe(ctx(t), a, b+1000, store.Like)
	wantErr(t, err, store.ErrNotFound, "swipe on missing user")
	_, err = s.Swipe(ctx(t), a, b, store.Direction("love"))
	wantErr(t, err, store.ErrInvalid, "bad direction")

	r, err = s.Swipe(ctx(t), b, a, store.Superlike)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Match == nil || r.Match.ConversationID == 0 || r.Match.PeerID != a {
		t.Fatalf("mutual like: %+v", r)
	}
	r2, err := s.Swipe(ctx(t), b, a, store.Superlike)
	if err != nil || r2.Created || r2.Match == nil || r2.Match.ID != r.Match.ID {
		t.Fatalf("repeated mutual like: %+v, %v", r2, err)
	}
	// A pass never matches.
	if _, err := s.Swipe(ctx(t), c, a, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err = s.Swipe(ctx(t), a, c, store.Pass)
	if err != nil || r.Match != nil {
		t.Fatalf("pass after like: %+v, %v", r, err)
	}
	for _, u := range []int64{a, b} {
		ms, err := s.ListMatches(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].PeerID != a+b-u {
			t.Fatalf("matches of %d: %+v", u, ms)
		}
		cs, err := s.ListConversations(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != ms[0].ConversationID || cs[0].LastMessage != nil || cs[0].UnreadCount != 0 {
			t.Fatalf("conversations of %d: %+v", u, cs)
		}
	}
	ms, _ := s.ListMatches(ctx(t), c)
	if len(ms) != 0 {
		t.Fatalf("c has matches %+v", ms)
	}
}

func testConcurrentMatch(t *testing.T, s store.Store) {
	for round := 0; round < 5; round++ {
		a := mk(t, s, "a", 30, "man", nil, nil)
		b := mk(t, s, "b", 30, "woman", nil, nil)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, p := range [][2]int64{{a, b}, {b, a}} {
			wg.Add(1)
			go func(x, y int64) {
				defer wg.Done()
				_, err := s.Swipe(context.Background(), x, y, store.Like)
				errs <- err
			}(p[0], p[1])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ms, err := s.ListMatches(ctx(t), a)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 {
			t.Fatalf("round %d: concurrent mutual likes made %d matches, want 1", round, len(ms))
		}
	}
}

func testUnmatch(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", nil, nil)
	b := mk(t, s, "b", 30, "woman", nil, nil)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	match := matchUsers(t, s, a, b)
	_, _, err := s.Unmatch(ctx(t), c, match.ID)
	wantErr(t, err, store.ErrNotFound, "unmatch by outsider")
	m, _, err := s.Unmatch(ctx(t), a, match.ID)
	if err != nil || m.ID != match.ID || m.PeerID != b {
		t.Fatalf("unmatch: %+v %v", m, err)
	}
	_, _, err = s.Unmatch(ctx(t), b, match.ID)
	wantErr(t, err, store.ErrNotFound, "second unmatch")
	for _, u := range []int64{a, b} {
		ms, _ := s.ListMatches(ctx(t), u)
		cs, _ := s.ListConversations(ctx(t), u)
		if len(ms) != 0 || len(cs) != 0 {
			t.Fatalf("after unmatch user %d has %d matches, %d conversations", u, len(ms), len(cs))
		}
	}
	_, err = s.ListMessages(ctx(t), a, match.ConversationID, 0, 10)
	wantErr(t, err, store.ErrNotFound, "history after unmatch")
}

// matchPair makes two users and matches them.
func matchPair(t *testing.T, s store.Store) (a, b, conv int64) {
	t.Helper()
	a = mk(t, s, "a", 30, "man", nil, nil)
	b = mk(t, s, "b", 30, "woman", nil, nil)
	return a, b, matchUsers(t, s, a, b).ConversationID
}

// matchUsers makes a and b match (a likes b, b likes a back) and returns
// the match as b's swipe reported it.
func matchUsers(t *testing.T, s store.Store, a, b int64) store.Match {
	t.Helper()
	if _, err := s.Swipe(ctx(t), a, b, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err := s.Swipe(ctx(t), b, a, store.Like)
	if err != nil || r.Match == nil {
		t.Fatalf("match %d-%d: %+v %v", a, b, r, err)
	}
	return *r.Match
}
