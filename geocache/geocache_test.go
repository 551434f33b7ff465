package geocache

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmcloughlin/geohash"
)

func TestValidatePoint(t *testing.T) {
	good := [][2]float64{{0, 0}, {90, 180}, {-90, -180}, {-16.8, 179.99}}
	for _, p := range good {
		if err := ValidatePoint(p[0], p[1]); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	bad := [][2]float64{{90.0001, 0}, {0, 180.01}, {-91, 0}, {math.NaN(), 0}, {0, math.Inf(-1)}}
	for _, p := range bad {
		if err := ValidatePoint(p[0], p[1]); !errors.Is(err, ErrInvalidPoint) {
			t.Errorf("%v: got %v", p, err)
		}
	}
}

func TestCellAndNormalize(t *testing.T) {
	if c := Cell(57.64911, 10.40744, 11); c != "u4pruydqqvj" { // the classic example from geohash.org
		t.Fatalf("Cell = %q", c)
	}
	if c := Cell(57.64911, 10.40744, 0); len(c) != 1 {
		t.Fatalf("precision clamp low: %q", c)
	}
	if c := Cell(57.64911, 10.40744, 40); len(c) != MaxPrecision {
		t.Fatalf("precision clamp high: %q", c)
	}
	if n, err := NormalizeCell("U4PRU"); err != nil || n != "u4pru" {
		t.Fatalf("NormalizeCell: %q %v", n, err)
	}
	for _, bad := range []string{"", "a", "u4pr!", "u4pruydqqvjzz"} {
		if _, err := NormalizeCell(bad); err == nil {
			t.Errorf("NormalizeCell(%q) accepted", bad)
		}
	}
}

func TestCellSize(t *testing.T) {
	w, h := CellSize(5)
	if math.Abs(w-0.0439453125) > 1e-12 || math.Abs(h-0.0439453125) > 1e-12 {
		t.Fatalf("p5 = %v x %v", w, h)
	}
	w, h = CellSize(1)
	if w != 45 || h != 45 {
		t.Fatalf("p1 = %v x %v", w, h)
	}
}

func TestDistance(t *testing.T) {
	d := DistanceM(48.8566, 2.3522, 51.5072, -0.1276) // Paris - London
	if math.Abs(d-343_900) > 1500 {
		t.Fatalf("Paris-London = %.0f m", d)
	}
	d = DistanceM(-16.8, 179.95, -16.8, -179.95) // across the antimeridian
	if math.Abs(d-10_650) > 100 {
		t.Fatalf("across the antimeridian = %.0f m", d)
	}
}

// TestCoveringCellsComplete: every point within the radius lies in one of
// the covering cells, for random centres including the antimeridian and the
// poles.
func TestCoveringCellsComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	centres := [][2]float64{{-16.8, 179.99}, {-16.8, -179.99}, {89.95, 10}, {-89.9, -100}, {0, 0}, {35.67, 139.65}}
	for i := 0; i < 200; i++ {
		var lat, lng float64
		if i < len(centres) {
			lat, lng = centres[i][0], centres[i][1]
		} else {
			lat, lng = rng.Float64()*178-89, rng.Float64()*360-180
		}
		radius := 100 + rng.Float64()*80_000
		p := PrecisionForRadius(lat, lng, radius, 64)
		cells := CoveringCells(lat, lng, radius, p)
		if len(cells) > 64 {
			t.Fatalf("%d cells > 64 at precision %d", len(cells), p)
		}
		if n := CellCount(lat, lng, radius, p); n < len(cells) {
			t.Fatalf("CellCount %d < actual %d", n, len(cells))
		}
		set := map[string]bool{}
		for _, c := range cells {
			set[c] = true
		}
		for k := 0; k < 200; k++ {
			// Random point inside the circle.
			r := radius * math.Sqrt(rng.Float64()) / EarthRadiusM
			b := rng.Float64() * 2 * math.Pi
			p1, l1 := lat*math.Pi/180, lng*math.Pi/180
			p2 := math.Asin(math.Sin(p1)*math.Cos(r) + math.Cos(p1)*math.Sin(r)*math.Cos(b))
			l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(r)*math.Cos(p1), math.Cos(r)-math.Sin(p1)*math.Sin(p2))
			plat, plng := p2*180/math.Pi, math.Mod(l2*180/math.Pi+540, 360)-180
			if DistanceM(lat, lng, plat, plng) > radius {
				continue
			}
			if c := Cell(plat, plng, p); !set[c] {
				t.Fatalf("centre (%v,%v) r=%.0f p=%d: point (%v,%v) in cell %s not covered", lat, lng, radius, p, plat, plng, c)
			}
		}
	}
}

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
	got, err := cc.Near(ctx, -16.8, 179.995, 20_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != 1 || got[1].ID != 2 || got[2].ID != 3 {
		t.Fatalf("Near across the antimeridian = %+v", got)
	}
	before := loads.Load()
	if _, err := cc.Near(ctx, -16.8, 179.995, 20_000, nil); err != nil {
		t.Fatal(err)
	}
	if loads.Load() != before {
		t.Fatalf("second query reloaded %d cells", loads.Load()-before)
	}
	// A user moving into a cell is visible after Moved.
	put(5, -16.81, 179.99)
	cc.Moved("", Cell(-16.81, 179.99, 5))
	got, _ = cc.Near(ctx, -16.8, 179.995, 20_000, nil)
	if len(got) != 4 {
		t.Fatalf("after move-in: %+v", got)
	}
	// Filter.
	got, _ = cc.Near(ctx, -16.8, 179.995, 20_000, func(c Candidate) bool { return c.ID%2 == 1 })
	if len(got) != 3 {
		t.Fatalf("filtered: %+v", got)
	}
	// Expiry.
	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	before = loads.Load()
	cc.Near(ctx, -16.8, 179.995, 20_000, nil)
	if loads.Load() == before {
		t.Fatal("expired entries were not reloaded")
	}
	if _, err := cc.Near(ctx, 0, 0, 19_000_000, nil); !errors.Is(err, ErrRadiusTooLarge) {
		t.Fatalf("huge radius: %v", err)
	}
	// Concurrent misses share loads and are race-free.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cc.Near(ctx, 40.4, -3.7, 10_000, nil); err != nil {
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

// TestCandidateCacheReloadsOnlyTheInvalidatedCell: a cold miss loads the
// parent and stores its 32 children; a child invalidated on its own is then
// loaded alone, until the parent itself is invalidated or expires.
func TestCandidateCacheReloadsOnlyTheInvalidatedCell(t *testing.T) {
	var mu sync.Mutex // guards now
	var log loadLog
	var users []Candidate
	box := geohash.BoundingBox("u09t") // users spread over one precision-4 cell
	for i := range 200 {
		users = append(users, Candidate{ID: int64(i + 1), Age: 30, Gender: "woman",
			Lat: box.MinLat + (box.MaxLat-box.MinLat)*(float64(i%20)+0.5)/20,
			Lng: box.MinLng + (box.MaxLng-box.MinLng)*(float64(i/20)+0.5)/10})
	}
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		log.add(cell)
		var out []Candidate
		for _, u := range users {
			if strings.HasPrefix(Cell(u.Lat, u.Lng, 5), cell) {
				out = append(out, u)
			}
		}
		return out, nil
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
	box := geohash.BoundingBox("u09t")
	var users []Candidate
	for i := range 320 { // 10 in each of the 32 children
		users = append(users, Candidate{ID: int64(i + 1), Age: 30, Gender: "woman",
			Lat: box.MinLat + (box.MaxLat-box.MinLat)*(float64(i%16)+0.5)/16,
			Lng: box.MinLng + (box.MaxLng-box.MinLng)*(float64(i/16)+0.5)/20})
	}
	in := func(cell string) []Candidate {
		var out []Candidate
		for _, u := range users {
			if strings.HasPrefix(Cell(u.Lat, u.Lng, 5), cell) {
				out = append(out, u)
			}
		}
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

func TestCandidateCacheLoaderError(t *testing.T) {
	boom := errors.New("boom")
	cc, _ := NewCandidateCache(CandidateCacheConfig{Loader: func(context.Context, string) ([]Candidate, error) { return nil, boom }})
	if _, err := cc.Near(context.Background(), 1, 1, 1000, nil); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, err := NewCandidateCache(CandidateCacheConfig{}); err == nil {
		t.Fatal("nil loader accepted")
	}
}

// TestMinDistToBoxIsALowerBound: the best-first search is exact only if the
// distance to a cell never exceeds the distance to any point inside it.
func TestMinDistToBoxIsALowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		lat, lng := rng.Float64()*178-89, rng.Float64()*360-180
		if i%3 == 0 { // near the antimeridian
			lng = 179.5 + rng.Float64()
			if lng > 180 {
				lng -= 360
			}
		}
		p := uint(3 + rng.IntN(4))
		// A cell near the point, up to a few cells away.
		w, h := CellSize(p)
		clat := math.Max(-89.99, math.Min(89.99, lat+(rng.Float64()*8-4)*h))
		clng := math.Mod(lng+(rng.Float64()*8-4)*w+540, 360) - 180
		cell := Cell(clat, clng, p)
		b := geohashBox(cell)
		md := minDistToBox(lat, lng, b[0], b[1], b[2], b[3])
		for k := 0; k < 60; k++ {
			qlat := b[0] + rng.Float64()*(b[1]-b[0])
			qlng := b[2] + rng.Float64()*(b[3]-b[2])
			switch k % 4 { // on the edges too, where the nearest point lies
			case 1:
				qlng = b[2]
			case 2:
				qlng = b[3]
			case 3:
				qlat = b[k%2]
			}
			if d := DistanceM(lat, lng, qlat, qlng); d < md-1e-6 {
				t.Fatalf("point (%v,%v) cell %s: min %.3f > distance %.3f to (%v,%v)", lat, lng, cell, md, d, qlat, qlng)
			}
		}
	}
}

// TestNearestIteratorMatchesBruteForce compares the best-first iterator with
// a brute-force ranking over random points, across the antimeridian too.
func TestNearestIteratorMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var all []Candidate
	centres := [][2]float64{{-16.8, 179.99}, {48.85, 2.35}, {69.9, 23.0}}
	for i := 0; i < 4000; i++ {
		c := centres[i%3]
		lat := c[0] + rng.NormFloat64()*0.3
		lng := math.Mod(c[1]+rng.NormFloat64()*0.5+540, 360) - 180
		all = append(all, Candidate{ID: int64(i + 1), Lat: lat, Lng: lng, Age: int16(18 + rng.IntN(40)), Gender: "man"})
	}
	byCell := map[string][]Candidate{}
	for _, c := range all {
		k := Cell(c.Lat, c.Lng, 5)
		byCell[k] = append(byCell[k], c)
	}
	loader := func(_ context.Context, cell string) ([]Candidate, error) {
		var out []Candidate
		for k, v := range byCell {
			if len(k) >= len(cell) && k[:len(cell)] == cell {
				out = append(out, v...)
			}
		}
		return out, nil
	}
	// The same with parent reads bounded to 20 users: dense parents are
	// read in part, the rest cell by cell.
	bounded := func(ctx context.Context, cell string, limit int) ([]Candidate, bool, error) {
		out, _ := loader(ctx, cell)
		p := uint(len(cell) + 1)
		slices.SortStableFunc(out, func(a, b Candidate) int { return strings.Compare(Cell(a.Lat, a.Lng, p), Cell(b.Lat, b.Lng, p)) })
		if len(out) > limit {
			return out[:limit], false, nil
		}
		return out, true, nil
	}
	for _, cfg := range []CandidateCacheConfig{
		{Loader: loader, MaxBytes: 64 << 20},
		{Loader: loader, BoundedLoader: bounded, ParentRows: 20, MaxBytes: 64 << 20},
	} {
		matchesBruteForce(t, rng, cfg, all, centres)
	}
}

func matchesBruteForce(t *testing.T, rng *rand.Rand, cfg CandidateCacheConfig, all []Candidate, centres [][2]float64) {
	t.Helper()
	cc, err := NewCandidateCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	for q := 0; q < 60; q++ {
		c := centres[q%3]
		lat, lng := c[0]+rng.NormFloat64()*0.2, math.Mod(c[1]+rng.NormFloat64()*0.3+540, 360)-180
		radius := 1000 + rng.Float64()*60_000
		keep := func(c Candidate) bool { return c.Age%2 == 0 }
		var want []Ranked
		for _, cd := range all {
			if d := DistanceM(lat, lng, cd.Lat, cd.Lng); d <= radius && keep(cd) {
				want = append(want, Ranked{Candidate: cd, DistanceM: d})
			}
		}
		sortRanked(want)
		got, err := cc.Near(ctx, lat, lng, radius, keep)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("query %d: got %d, want %d", q, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Fatalf("query %d: at %d got %d (%.1f m) want %d (%.1f m)", q, i, got[i].ID, got[i].DistanceM, want[i].ID, want[i].DistanceM)
			}
		}
		// Stopping early touches few cells.
		it, _ := cc.Nearest(lat, lng, radius, keep)
		for i := 0; i < 10; i++ {
			if _, ok, err := it.Next(ctx); err != nil || !ok {
				break
			}
		}
		if total := CellCount(lat, lng, radius, 5); len(want) > 50 && it.CellsRead() > total/2 && total > 50 {
			t.Fatalf("query %d: first 10 results read %d of %d cells", q, it.CellsRead(), total)
		}
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
