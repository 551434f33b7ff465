package geocache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/tiered"
)

func TestCandidateCache(t *testing.T) {
	var loads atomic.Int64
	data := map[string][]Candidate{}
	var mu sync.Mutex
	put := func(id int64, lat, lng float64) {
		mu.Lock()
		defer mu.Unlock()
		c := Cell(lat, lng, 5)
		data[c] = append(data[c], Candidate{ID: id, Lat: lat, Lng: lng, Age: 30, Gender: "woman"})
	}
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		loads.Add(1)
		mu.Lock()
		defer mu.Unlock()
		var out []Candidate
		for k, v := range data {
			if len(k) >= len(cell) && k[:len(cell)] == cell {
				out = append(out, v...)
			}
		}
		return out, nil
	}
	now := time.Unix(1000, 0)
	var clock sync.Mutex
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, TTL: time.Minute, MaxBytes: 16 << 20,
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	put(1, -16.8, 179.99)
	put(2, -16.8, -179.99)
	put(3, -16.9, 179.9)
	put(4, -18.14, 178.44) // Suva, far
	ctx := context.Background()
	got, err := near(ctx, cc, -16.8, 179.995, 20_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != 1 || got[1].ID != 2 || got[2].ID != 3 {
		t.Fatalf("Near across the antimeridian = %+v", got)
	}
	before := loads.Load()
	if _, err := near(ctx, cc, -16.8, 179.995, 20_000, nil); err != nil {
		t.Fatal(err)
	}
	if loads.Load() != before {
		t.Fatalf("second query reloaded %d cells", loads.Load()-before)
	}
	// A user moving into a cell is visible after the cell is invalidated.
	put(5, -16.81, 179.99)
	cc.Invalidate(Cell(-16.81, 179.99, 5))
	got, _ = near(ctx, cc, -16.8, 179.995, 20_000, nil)
	if len(got) != 4 {
		t.Fatalf("after move-in: %+v", got)
	}
	// Filter.
	got, _ = near(ctx, cc, -16.8, 179.995, 20_000, func(c Candidate) bool { return c.ID%2 == 1 })
	if len(got) != 3 {
		t.Fatalf("filtered: %+v", got)
	}
	// Expiry.
	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	before = loads.Load()
	near(ctx, cc, -16.8, 179.995, 20_000, nil)
	if loads.Load() == before {
		t.Fatal("expired entries were not reloaded")
	}
	if _, err := near(ctx, cc, 0, 0, 19_000_000, nil); !errors.Is(err, ErrRadiusTooLarge) {
		t.Fatalf("huge radius: %v", err)
	}
	// Concurrent misses share loads and are race-free.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := near(ctx, cc, 40.4, -3.7, 10_000, nil); err != nil {
				t.Error(err)
			}
			cc.Invalidate(Cell(40.4, -3.7, 5))
		}()
	}
	wg.Wait()
	if h, m := cc.Stats(); h+m == 0 {
		t.Fatal("no stats")
	}
}

func TestCandidateCacheLoaderError(t *testing.T) {
	boom := errors.New("boom")
	cc, _ := NewCandidateCache(CandidateCacheConfig{Loader: func(context.Context, string) ([]Candidate, error) { return nil, boom }})
	if _, err := near(context.Background(), cc, 1, 1, 1000, nil); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, err := NewCandidateCache(CandidateCacheConfig{}); err == nil {
		t.Fatal("nil loader accepted")
	}
}

// Two origin instances whose candidate caches share a Redis: a cell loaded
// by one is a hit for the other, and a move reported to one invalidates the
// cell for both.
func TestCandidateCacheSharedThroughRedis(t *testing.T) {
	ro := tiered.DefaultRedisOptions(testredis.Shared(t))
	ro.KeyPrefix = testredis.Prefix(t)
	var users atomic.Pointer[[]Candidate]
	users.Store(&[]Candidate{{ID: 1, Lat: 48.8566, Lng: 2.3522, Age: 30, Gender: "woman"}})
	var loads atomic.Int64
	loader := func(_ context.Context, cell string) ([]Candidate, error) {
		loads.Add(1)
		return withPrefix(*users.Load(), cell), nil
	}
	newInstance := func() *CandidateCache {
		st, err := tiered.New(context.Background(), tiered.Options{Capacity: 16 << 20, MaxEntrySize: 1 << 20, MaxLifetime: time.Minute, Redis: &ro})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, Store: st, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	a, b := newInstance(), newInstance()
	ctx := context.Background()
	cell := Cell(48.8566, 2.3522, 5)

	if got, err := a.Get(ctx, cell); err != nil || len(got) != 1 {
		t.Fatalf("a.Get = %v, %v", got, err)
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if got, err := b.Get(ctx, cell); err != nil || len(got) != 1 || got[0].Gender != "woman" || got[0].Age != 30 {
		t.Fatalf("b.Get = %+v, %v", got, err)
	}
	if loads.Load() != 1 {
		t.Fatalf("b reloaded a cell a had stored: loads = %d", loads.Load())
	}

	// A second user moves into the cell; the move is reported to a only.
	users.Store(&[]Candidate{{ID: 1, Lat: 48.8566, Lng: 2.3522, Age: 30, Gender: "woman"}, {ID: 2, Lat: 48.8570, Lng: 2.3530, Age: 33, Gender: "man"}})
	a.Invalidate(Cell(48.8570, 2.3530, 7))
	testutil.Eventually(t, 2*time.Second, "b to see both users in the cell after the move on a", func() bool {
		got, err := b.Get(ctx, cell)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
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
	get := func() Candidate { t.Helper(); return getOne(t, cc, cell) }
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
	get := func() int16 { t.Helper(); return getOne(t, cc, cell).Age }
	get()
	age.Store(31)
	clock.Add(int64(61 * time.Second)) // expired, within the grace
	blocking.Store(true)
	for i := 0; i < 5; i++ {
		if a := get(); a != 30 {
			t.Fatalf("read during the refresh = age %d, want the stale 30", a)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the background refresh to start", func() bool { return loads.Load() >= 2 })
	get()
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads, want the first and one refresh", n)
	}
	release <- struct{}{}
	testutil.Eventually(t, 5*time.Second, "the refresh to replace the stale cell", func() bool { return get() == 31 })
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
