package geocache

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// BenchmarkNearestMatching: the 50 nearest of a dense synthetic city
// (200,000 candidates within ~10 km, a quarter of them passing the age and
// gender filter) from warm decoded cells, as a suggestions request walks them.
func BenchmarkNearestMatching(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	genders := []string{"woman", "man", "nonbinary"}
	byCell := map[string][]Candidate{}
	for i := 0; i < 200_000; i++ {
		c := Candidate{ID: int64(i + 1), Lat: 48.85 + rng.NormFloat64()*0.05, Lng: 2.35 + rng.NormFloat64()*0.07,
			Age: int16(18 + rng.IntN(50)), Gender: genders[rng.IntN(3)], Extra: []byte("name and a short bio of about sixty bytes, as in the seed")}
		k := Cell(c.Lat, c.Lng, 6)
		byCell[k] = append(byCell[k], c)
	}
	loader := func(ctx context.Context, cell string) ([]Candidate, error) {
		var out []Candidate
		for k, cs := range byCell {
			if strings.HasPrefix(k, cell) {
				out = append(out, cs...)
			}
		}
		return out, nil
	}
	cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, MaxBytes: 512 << 20, MaxPrecision: 6, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	f := Filter{MinAge: 25, MaxAge: 40, Genders: []string{"woman"}, Limit: 50}
	walk := func(lat, lng float64) int {
		it, err := cc.NearestMatching(lat, lng, 50_000, f)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for ; n < 50; n++ {
			if _, ok, err := it.Next(ctx); err != nil || !ok {
				break
			}
		}
		return n
	}
	points := make([][2]float64, 256)
	for i := range points {
		points[i] = [2]float64{48.85 + rng.NormFloat64()*0.03, 2.35 + rng.NormFloat64()*0.04}
		walk(points[i][0], points[i][1]) // warm
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := points[i%len(points)]
		if walk(p[0], p[1]) != 50 {
			b.Fatal("fewer than 50 candidates")
		}
	}
}
