package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func TestSessionAdvancesOnly(t *testing.T) {
	s := store.NewSession(100)
	s.Advance(50)
	if got := s.After(); got != 100 {
		t.Fatalf("after advancing to a lower position: %d, want 100", got)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Advance(store.Position(200 + i)) }()
	}
	wg.Wait()
	if got := s.After(); got != 263 {
		t.Fatalf("after concurrent advances: %d, want the highest, 263", got)
	}
	var none *store.Session
	none.Advance(5) // nil-safe: a request without a session
	if none.After() != 0 {
		t.Fatal("a nil session must read after no position")
	}
	ctx := store.WithSession(context.Background(), s)
	if store.SessionFrom(ctx) != s || store.SessionFrom(context.Background()) != nil {
		t.Fatal("SessionFrom does not return the session WithSession stored")
	}
}

func TestSessionBoundAndReplicaRead(t *testing.T) {
	s := store.NewSession(1000)
	if s.Bound(2000) || s.After() != 1000 {
		t.Fatalf("a bound above the position changed it: %d", s.After())
	}
	if !s.Bound(700) || s.After() != 700 {
		t.Fatalf("bound to 700: %d, want 700", s.After())
	}
	if _, ok := s.ReplicaRead(); ok {
		t.Fatal("a session that read nothing from a replica says it did")
	}
	s.ReadReplica(500)
	s.ReadReplica(900)
	s.ReadReplica(0) // a replica read at an unknown position
	if p, ok := s.ReplicaRead(); !ok || p != 0 {
		t.Fatalf("replica reads at 500, 900 and unknown: %d, %v; want 0 (the lowest), true", p, ok)
	}
	u := store.NewSession(0)
	u.ReadReplica(900)
	u.ReadReplica(500)
	if p, ok := u.ReplicaRead(); !ok || p != 500 {
		t.Fatalf("replica reads at 900 and 500: %d, %v; want 500, true", p, ok)
	}
	var none *store.Session
	none.ReadReplica(5)
	if none.Bound(1) {
		t.Fatal("a nil session was bound")
	}
	if _, ok := none.ReplicaRead(); ok {
		t.Fatal("a nil session read from a replica")
	}
}
