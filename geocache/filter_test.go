package geocache

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

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
	loader := func(_ context.Context, cell string) ([]Candidate, error) { return withPrefix(all, cell), nil }
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
		want, err := near(ctx, cc, lat, lng, radius, keep)
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
