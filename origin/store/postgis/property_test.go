package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// TestCellCacheEqualsExactSQL is the property test of the cell-candidate
// cache: on random data (clusters in Madrid, Fiji across the antimeridian and
// near the North Cape, random swipes, blocks, inactive users, preferences),
// suggestions built through the cache equal the exact KNN SQL answer, also
// after users move and change their profiles, and while swipes, blocks and
// preference changes through the cached store interleave with requests.
func TestCellCacheEqualsExactSQL(t *testing.T) {
	exact := pgtest.Open(t, "test_postgis_prop")
	// Parent reads bounded to 8 users, so dense parents are read in part
	// and the rest cell by cell (the default 1024 runs in the conformance
	// suite).
	cached := pgtest.OpenWith(t, "test_postgis_prop", func(c *postgis.Config) {
		c.CellCache = postgis.CellCacheConfig{Enabled: true, ParentRows: 8}
	})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(42, 7))
	centres := []store.Point{{Lat: 40.4168, Lng: -3.7038}, {Lat: -16.8, Lng: 179.98}, {Lat: 71.0, Lng: 25.8}}
	randPoint := func() store.Point {
		c := centres[rng.IntN(len(centres))]
		lat := c.Lat + rng.NormFloat64()*0.15
		lng := c.Lng + rng.NormFloat64()*0.15/math.Cos(c.Lat*math.Pi/180)
		lng = math.Mod(lng+540, 360) - 180
		return store.Point{Lat: lat, Lng: lng}
	}
	const n = 1500
	var ids []int64
	for i := 0; i < n; i++ {
		pt := randPoint()
		lo := int16(18 + rng.IntN(30))
		prefs := &store.Preferences{MinAge: lo, MaxAge: lo + int16(rng.IntN(30)), MaxDistanceKm: int32(1 + rng.IntN(60)),
			Genders: [][]string{{"woman"}, {"man"}, {"woman", "man", "nonbinary"}}[rng.IntN(3)]}
		id, err := exact.CreateUser(ctx, store.NewUser{
			Profile:     store.ProfileUpdate{Name: fmt.Sprintf("u%d", i), Age: int16(18 + rng.IntN(50)), Gender: store.AllGenders()[rng.IntN(3)], Active: rng.IntN(10) > 0},
			Preferences: prefs, Location: &pt,
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := 0; i < 6000; i++ {
		a, b := ids[rng.IntN(n)], ids[rng.IntN(n)]
		if a == b {
			continue
		}
		if _, err := exact.Swipe(ctx, a, b, []store.Direction{store.Like, store.Pass, store.Superlike}[rng.IntN(3)]); err != nil && !isConflict(err) {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		a, b := ids[rng.IntN(n)], ids[rng.IntN(n)]
		if a != b {
			if _, err := exact.Block(ctx, a, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare := func(round string) {
		t.Helper()
		for k := 0; k < 150; k++ {
			id := ids[rng.IntN(n)]
			limit := 1 + rng.IntN(60)
			want, err := exact.Suggestions(ctx, id, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cached.Suggestions(ctx, id, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: user %d limit %d: cache gave %d, SQL %d", round, id, limit, len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID || math.Abs(got[i].DistanceM-want[i].DistanceM) > 0.01 {
					t.Fatalf("%s: user %d limit %d: at %d cache %d (%.2f m), SQL %d (%.2f m)", round, id, limit, i,
						got[i].ID, got[i].DistanceM, want[i].ID, want[i].DistanceM)
				}
			}
		}
	}
	compare("initial")
	hits, misses := cached.CellCache().Stats()
	if hits == 0 {
		t.Fatalf("cache never hit (misses %d)", misses)
	}
	// Moves and profile changes through the cached store must invalidate it.
	for i := 0; i < 300; i++ {
		id := ids[rng.IntN(n)]
		if rng.IntN(2) == 0 {
			if _, err := cached.SetLocation(ctx, id, randPoint()); err != nil {
				t.Fatal(err)
			}
		} else {
			p, err := cached.GetProfile(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cached.UpdateProfile(ctx, id, store.ProfileUpdate{Name: p.Name, Age: int16(18 + rng.IntN(50)),
				Gender: store.AllGenders()[rng.IntN(3)], Active: rng.IntN(5) > 0}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare("after moves")
	// Swipes, blocks and preference changes through the cached store,
	// interleaved with suggestions: each user's cached exclusion set and
	// preferences are updated in place and must still equal the SQL.
	for round := 0; round < 4; round++ {
		for i := 0; i < 150; i++ {
			a := ids[rng.IntN(n)]
			switch k := rng.IntN(20); {
			case k == 0:
				b := ids[rng.IntN(n)]
				if a != b {
					if _, err := cached.Block(ctx, a, b); err != nil {
						t.Fatal(err)
					}
				}
			case k == 1:
				lo := int16(18 + rng.IntN(30))
				if err := cached.PutPreferences(ctx, a, store.Preferences{MinAge: lo, MaxAge: lo + int16(rng.IntN(30)),
					MaxDistanceKm: int32(1 + rng.IntN(60)), Genders: [][]string{{"woman"}, {"man"}, {"woman", "man", "nonbinary"}}[rng.IntN(3)]}); err != nil {
					t.Fatal(err)
				}
			default:
				// Swipe on one of the user's current suggestions, as a client does.
				got, err := cached.Suggestions(ctx, a, 5)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					continue
				}
				b := got[rng.IntN(len(got))].ID
				if _, err := cached.Swipe(ctx, a, b, []store.Direction{store.Like, store.Pass, store.Superlike}[rng.IntN(3)]); err != nil && !isConflict(err) {
					t.Fatal(err)
				}
				after, err := cached.Suggestions(ctx, a, 60)
				if err != nil {
					t.Fatal(err)
				}
				if contains(after, b) {
					t.Fatalf("round %d: %d suggested to %d right after the swipe", round, b, a)
				}
			}
		}
		compare(fmt.Sprintf("after swipes and blocks, round %d", round))
	}
}

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }
