package geocache

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

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
		got, err := near(ctx, cc, lat, lng, radius, keep)
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
		if total := CellCount(lat, lng, radius, 5); len(want) > 50 && it.cellsRead > total/2 && total > 50 {
			t.Fatalf("query %d: first 10 results read %d of %d cells", q, it.cellsRead, total)
		}
	}
}

// sortRanked orders r nearest first, ties by id.
func sortRanked(r []Ranked) {
	slices.SortFunc(r, func(a, b Ranked) int {
		if c := cmp.Compare(a.DistanceM, b.DistanceM); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
