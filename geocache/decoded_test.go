package geocache

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/tiered"
)

func TestDecodedCellsBudget(t *testing.T) {
	s := decodedCells{m: map[string]*decodedCell{}, max: 10_000}
	for i := 0; i < 200; i++ {
		cell := Cell(float64(i%90), float64(i), 5)
		s.put(cell, &decodedCell{size: 700})
		if _, bytes := s.len(); bytes > s.max {
			t.Fatalf("after %d puts %d bytes held, budget %d", i+1, bytes, s.max)
		}
	}
	// Replacing cells over and over keeps the count of bytes exact.
	for i := 0; i < 5000; i++ {
		cell := Cell(float64(i%7), float64(i%5), 5)
		s.put(cell, &decodedCell{size: int64(300 + i%400)})
		var sum int64
		s.mu.RLock()
		for _, d := range s.m {
			sum += d.size
		}
		s.mu.RUnlock()
		if _, bytes := s.len(); bytes != sum || bytes > s.max {
			t.Fatalf("after replacing: %d bytes counted, %d held, budget %d", bytes, sum, s.max)
		}
	}
	n, _ := s.len()
	if n == 0 || n > 10_000/300 {
		t.Fatalf("%d cells held in a 10,000-byte budget of cells of 300 bytes or more", n)
	}
	s.put("big", &decodedCell{size: s.max/4 + 1})
	if s.get("big") != nil {
		t.Error("a cell over a quarter of the budget was kept")
	}
	off := decodedCells{m: map[string]*decodedCell{}}
	off.put("x", &decodedCell{size: 1})
	if off.get("x") != nil {
		t.Error("disabled (zero budget) store kept a cell")
	}
}

// A decoded cell is read in place until a purge reaches the store, whoever
// made it (here the store itself, as a purge from another origin would), and
// is read again from the store, not reloaded, when only unrelated purges
// overflowed the store's purge log.
func TestDecodedCellFollowsStorePurges(t *testing.T) {
	ctx := context.Background()
	st, err := tiered.New(ctx, tiered.Options{Capacity: 8 << 20, MaxEntrySize: 1 << 20, MaxLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var loads atomic.Int64
	var age atomic.Int32
	age.Store(30)
	const lat, lng = 38.72, -9.14
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		loads.Add(1)
		return []Candidate{{ID: 1, Lat: lat, Lng: lng, Age: int16(age.Load()), Gender: "woman", Extra: []byte("x")}}, nil
	}
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, Store: st, MaxBytes: 8 << 20, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cell := Cell(lat, lng, 5)
	get := func() Candidate {
		t.Helper()
		got, err := cc.Get(ctx, cell)
		if err != nil || len(got) != 1 {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		return got[0]
	}
	get()
	d := cc.decoded.get(cell)
	if d == nil {
		t.Fatal("cell not kept decoded")
	}
	get()
	if cc.decoded.get(cell) != d || loads.Load() != 1 {
		t.Fatalf("a hit replaced the decoded cell or loaded again (%d loads)", loads.Load())
	}
	// Unrelated purges: the copy stays (within the log) ...
	st.Delete(ctx, "geocell:zzzzz")
	get()
	if cc.decoded.get(cell) != d {
		t.Fatal("an unrelated purge dropped the decoded cell")
	}
	// ... and past the log's memory (tiered keeps 2,048 purge records) it
	// is read again from the store.
	for i := 0; i < 4100; i++ {
		st.Delete(ctx, "unrelated")
	}
	get()
	if cc.decoded.get(cell) == d || loads.Load() != 1 {
		t.Fatalf("after the purge log overflowed: same copy %v, %d loads", cc.decoded.get(cell) == d, loads.Load())
	}
	// A purge of a coarser cell's tag reaches it.
	age.Store(41)
	st.PurgeTags(ctx, cellTag(cell[:3]))
	if got := get(); got.Age != 41 || loads.Load() != 2 {
		t.Fatalf("after a tag purge: age %d, %d loads", got.Age, loads.Load())
	}
	// Get's result is the caller's own.
	got, _ := cc.Get(ctx, cell)
	got[0].Age = 99
	if get().Age != 41 {
		t.Fatal("changing Get's result changed the cache")
	}
}

// Past its TTL a decoded cell is still served, at once, while one
// background load refreshes it; past TTL+Grace, or after a purge, it is not.
func TestDecodedCellRefreshAhead(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(time.Unix(1000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var loads atomic.Int64
	var age atomic.Int32
	age.Store(30)
	release := make(chan struct{}, 16)
	var blocking atomic.Bool
	const lat, lng = 38.72, -9.14
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		loads.Add(1)
		if blocking.Load() {
			<-release
		}
		return []Candidate{{ID: 1, Lat: lat, Lng: lng, Age: int16(age.Load()), Gender: "woman"}}, nil
	}
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, MaxBytes: 8 << 20, TTL: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	defer close(release) // runs first: no refresh stays blocked
	cell := Cell(lat, lng, 5)
	get := func() int16 {
		t.Helper()
		got, err := cc.Get(ctx, cell)
		if err != nil || len(got) != 1 {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		return got[0].Age
	}
	get()
	age.Store(31)
	clock.Add(int64(61 * time.Second)) // expired, within the grace
	blocking.Store(true)
	for i := 0; i < 5; i++ {
		if a := get(); a != 30 {
			t.Fatalf("read during the refresh = age %d, want the stale 30", a)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for loads.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	get()
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads, want the first and one refresh", n)
	}
	release <- struct{}{}
	for get() != 31 {
		if time.Now().After(deadline) {
			t.Fatal("refresh never replaced the stale cell")
		}
		time.Sleep(time.Millisecond)
	}
	blocking.Store(false)
	// Past TTL+Grace: a synchronous load.
	age.Store(32)
	clock.Add(int64(3 * time.Minute))
	if a := get(); a != 32 {
		t.Fatalf("past the grace: age %d, want 32", a)
	}
	// A purge within the grace is never served stale.
	clock.Add(int64(61 * time.Second))
	age.Store(33)
	cc.Invalidate(cell)
	if a := get(); a != 33 {
		t.Fatalf("after a purge within the grace: age %d, want 33", a)
	}
}

// NearestMatching's Filter selects exactly what the equivalent keep function
// does, in the same order.
func TestFilterMatchesKeep(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	genders := []string{"woman", "man", "nonbinary", "other"}
	var all []Candidate
	for i := 0; i < 3000; i++ {
		lat, lng := 52.52+rng.NormFloat64()*0.05, 13.40+rng.NormFloat64()*0.08
		if i%3 == 0 { // several on one spot: equal distances, ordered by id
			lat, lng = math.Round(lat*200)/200, math.Round(lng*200)/200
		}
		all = append(all, Candidate{ID: int64(i + 1), Lat: lat, Lng: lng,
			Age: int16(18 + rng.IntN(60)), Gender: genders[rng.IntN(len(genders))]})
	}
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		var out []Candidate
		for _, c := range all {
			if strings.HasPrefix(Cell(c.Lat, c.Lng, 6), cell) {
				out = append(out, c)
			}
		}
		return out, nil
	}
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, MaxBytes: 32 << 20, MaxPrecision: 6, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	nonEmpty := 0
	defer func() {
		if nonEmpty < 15 {
			t.Errorf("only %d of 20 trials found candidates: the test compares too little", nonEmpty)
		}
	}()
	for trial := 0; trial < 20; trial++ {
		f := Filter{MinAge: int16(18 + rng.IntN(20)), MaxAge: int16(30 + rng.IntN(50)), Self: int64(1 + rng.IntN(3000)),
			Genders: genders[:1+rng.IntN(3)]}
		for i := 0; i < 300; i++ {
			f.Exclude = append(f.Exclude, int64(1+rng.IntN(3000)))
		}
		slices.Sort(f.Exclude)
		keep := func(c Candidate) bool {
			_, excluded := slices.BinarySearch(f.Exclude, c.ID)
			return c.ID != f.Self && c.Age >= f.MinAge && c.Age <= f.MaxAge && slices.Contains(f.Genders, c.Gender) && !excluded
		}
		lat, lng, radius := 52.52+rng.NormFloat64()*0.03, 13.40+rng.NormFloat64()*0.03, float64(2000+rng.IntN(8000))
		want, err := cc.Near(ctx, lat, lng, radius, keep)
		if err != nil {
			t.Fatal(err)
		}
		it, err := cc.NearestMatching(lat, lng, radius, f)
		if err != nil {
			t.Fatal(err)
		}
		got := take(t, it, -1)
		if len(want) > 0 {
			nonEmpty++
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: filter gave %d candidates, keep %d", trial, len(got), len(want))
		}
		// With a Limit, the first Limit are the same (and only those are taken).
		f.Limit = 1 + rng.IntN(80)
		it, err = cc.NearestMatching(lat, lng, radius, f)
		if err != nil {
			t.Fatal(err)
		}
		got = take(t, it, f.Limit)
		if n := min(f.Limit, len(want)); !reflect.DeepEqual(got, want[:n]) {
			t.Fatalf("trial %d: with limit %d the first %d differ", trial, f.Limit, n)
		}
	}
}

// take returns the iterator's next n results (n < 0: all of them).
func take(t *testing.T, it *Iterator, n int) []Ranked {
	t.Helper()
	var got []Ranked
	for n < 0 || len(got) < n {
		r, ok, err := it.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, r)
	}
	return got
}
