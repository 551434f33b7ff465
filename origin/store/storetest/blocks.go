package storetest

import (
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func testBlock(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", pt(10, 10), nil)
	b := mk(t, s, "b", 30, "woman", pt(10, 10.01), nil)
	match := matchUsers(t, s, a, b)
	if _, err := s.Block(ctx(t), b, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Block(ctx(t), b, a); err != nil {
		t.Fatalf("repeated block: %v", err)
	}
	_, err := s.Block(ctx(t), a, a)
	wantErr(t, err, store.ErrInvalid, "block self")
	_, err = s.Block(ctx(t), a, b+1000)
	wantErr(t, err, store.ErrNotFound, "block missing")
	ms, _ := s.ListMatches(ctx(t), a)
	if len(ms) != 0 {
		t.Fatalf("match survived a block: %+v", ms)
	}
	_, _, err = send(t, s, a, match.ConversationID, "hi", "m1")
	wantErr(t, err, store.ErrNotFound, "message after block")
}

func testBlockedWith(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", nil, nil)
	b := mk(t, s, "b", 30, "woman", nil, nil)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	d := mk(t, s, "d", 30, "woman", nil, nil)
	e := mk(t, s, "e", 30, "woman", nil, nil)
	for _, blk := range [][2]int64{{a, b}, {c, a}, {a, d}, {d, a}} {
		if _, err := s.Block(ctx(t), blk[0], blk[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id   int64
		max  int
		want []int64
	}{{a, 10, []int64{b, c, d}}, {a, 2, []int64{b, c}}, {a, 0, nil}, {b, 10, []int64{a}}, {c, 10, []int64{a}}, {e, 10, nil}} {
		got, err := s.BlockedWith(ctx(t), tc.id, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(got, tc.want) {
			t.Fatalf("BlockedWith(%d, %d) = %v, want %v", tc.id, tc.max, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b int64
		want bool
	}{{a, b, true}, {b, a, true}, {a, c, true}, {c, a, true}, {a, d, true}, {b, c, false}, {a, e, false}, {e, a, false}} {
		got, err := s.Blocked(ctx(t), tc.a, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("Blocked(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
