package geocache

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCandidateCacheReloadsOnlyTheInvalidatedCell: a cold miss loads the
// parent and stores its 32 children; a child invalidated on its own is then
// loaded alone, until the parent itself is invalidated or expires.
func TestCandidateCacheReloadsOnlyTheInvalidatedCell(t *testing.T) {
	var mu sync.Mutex // guards now
	var log loadLog
	users := spread("u09t", 20, 10) // users spread over one precision-4 cell
	loader := func(_ context.Context, cell string) ([]Candidate, error) {
		log.add(cell)
		return withPrefix(users, cell), nil
	}
	now := time.Unix(1000, 0)
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, TTL: time.Minute, Grace: -1, DecodedBytes: -1,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	loads := log.take
	ctx := context.Background()
	a := Cell(users[0].Lat, users[0].Lng, 5)
	b := Cell(users[199].Lat, users[199].Lng, 5)
	if a == b || a[:4] != b[:4] {
		t.Fatalf("test data: want two precision-5 cells in one parent, got %s and %s", a, b)
	}
	get := func(cell string) []Candidate {
		t.Helper()
		got, err := cc.Get(ctx, cell)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	wantA := len(get(a))
	if l := loads(); !slices.Equal(l, []string{a[:4]}) {
		t.Fatalf("cold miss loaded %q, want the parent %q", l, a[:4])
	}
	get(b)
	if l := loads(); len(l) != 0 {
		t.Fatalf("sibling of a loaded cell loaded %q", l)
	}
	cc.Invalidate(a)
	if got := len(get(a)); got != wantA {
		t.Fatalf("after invalidation %d candidates, want %d", got, wantA)
	}
	if l := loads(); !slices.Equal(l, []string{a}) {
		t.Fatalf("invalidated cell loaded %q, want only %q", l, a)
	}
	get(b)
	if l := loads(); len(l) != 0 {
		t.Fatalf("sibling reloaded %q after another cell's invalidation", l)
	}
	cc.Invalidate(a[:4])
	get(a)
	if l := loads(); !slices.Equal(l, []string{a[:4]}) {
		t.Fatalf("after the parent's invalidation loaded %q, want the parent", l)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	get(b)
	if l := loads(); !slices.Equal(l, []string{a[:4]}) {
		t.Fatalf("after expiry loaded %q, want the parent", l)
	}
}

// TestCandidateCacheBoundedParentRead: a dense parent is read only up to
// ParentRows; the children read whole are stored, a wanted cell beyond them
// is loaded alone, and so are the siblings after it.
func TestCandidateCacheBoundedParentRead(t *testing.T) {
	var log loadLog
	users := spread("u09t", 16, 20) // 10 in each of the 32 children
	in := func(cell string) []Candidate {
		out := withPrefix(users, cell)
		slices.SortStableFunc(out, func(a, b Candidate) int { return strings.Compare(Cell(a.Lat, a.Lng, 5), Cell(b.Lat, b.Lng, 5)) })
		return out
	}
	cc, err := NewCandidateCache(CandidateCacheConfig{
		Loader: func(_ context.Context, cell string) ([]Candidate, error) { log.add(cell); return in(cell), nil },
		BoundedLoader: func(_ context.Context, cell string, limit int) ([]Candidate, bool, error) {
			log.add(cell + "/")
			out := in(cell)
			if len(out) > limit {
				return out[:limit], false, nil
			}
			return out, true, nil
		},
		ParentRows: 25, // two children and a half
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	loads := log.take
	ctx := context.Background()
	count := func(cell string) int {
		t.Helper()
		got, err := cc.Get(ctx, cell)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(in(cell)); len(got) != want {
			t.Fatalf("cell %s: %d candidates, want %d", cell, len(got), want)
		}
		return len(got)
	}
	if count("u09t0") == 0 || count("u09t1") == 0 {
		t.Fatal("test data: the first children are empty")
	}
	if l := loads(); !slices.Equal(l, []string{"u09t/"}) {
		t.Fatalf("first children: loads %q, want one bounded parent read", l)
	}
	count("u09t2") // cut by the bound: read alone
	count("u09tz") // beyond the bound: read alone
	if l := loads(); !slices.Equal(l, []string{"u09t2", "u09tz"}) {
		t.Fatalf("cells beyond the bound: loads %q", l)
	}
}

// loadLog records the cells a test's loaders were asked for.
type loadLog struct {
	mu    sync.Mutex
	cells []string
}

func (l *loadLog) add(cell string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cells = append(l.cells, cell)
}

// take returns the cells recorded since the last take.
func (l *loadLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cells
	l.cells = nil
	return c
}
