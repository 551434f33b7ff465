package geocache

import (
	"context"
	"testing"

	"github.com/mmcloughlin/geohash"
)

// near returns every candidate within radiusM of (lat, lng) that keep
// accepts, nearest first (ties by id): the whole of cc.Nearest's walk.
func near(ctx context.Context, cc *CandidateCache, lat, lng, radiusM float64, keep func(Candidate) bool) ([]Ranked, error) {
	it, err := cc.Nearest(lat, lng, radiusM, keep)
	if err != nil {
		return nil, err
	}
	var out []Ranked
	for {
		r, ok, err := it.Next(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, r)
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

// spread returns rows×cols users, aged 30, on an even grid over cell: user
// i (id i+1) in row i%rows and column i/rows.
func spread(cell string, rows, cols int) []Candidate {
	box := geohash.BoundingBox(cell)
	users := make([]Candidate, 0, rows*cols)
	for i := range rows * cols {
		users = append(users, Candidate{ID: int64(i + 1), Age: 30, Gender: "woman",
			Lat: box.MinLat + (box.MaxLat-box.MinLat)*(float64(i%rows)+0.5)/float64(rows),
			Lng: box.MinLng + (box.MaxLng-box.MinLng)*(float64(i/rows)+0.5)/float64(cols)})
	}
	return users
}

// getOne returns the one candidate cc holds in cell, failing the test when
// the cell holds another number or Get fails.
func getOne(t *testing.T, cc *CandidateCache, cell string) Candidate {
	t.Helper()
	got, err := cc.Get(context.Background(), cell)
	if err != nil || len(got) != 1 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	return got[0]
}
