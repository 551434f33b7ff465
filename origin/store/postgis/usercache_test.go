package postgis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
	"github.com/spark-edge/spark/tiered"
)

// crowd creates n active users around Madrid who all accept each other
// and returns their ids.
func crowd(t *testing.T, s store.Store, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		pt := store.Point{Lat: 40.4168 + rng.NormFloat64()*0.02, Lng: -3.7038 + rng.NormFloat64()*0.02}
		id, err := s.CreateUser(ctx, store.NewUser{
			Profile:     store.ProfileUpdate{Name: fmt.Sprintf("c%d", i), Age: 30, Gender: "woman", Active: true, Photos: []string{"p"}},
			Preferences: &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 20, Genders: []string{"woman"}},
			Location:    &pt,
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func contains(cs []store.Candidate, id int64) bool {
	return slices.ContainsFunc(cs, func(c store.Candidate) bool { return c.ID == id })
}

// TestCellCacheSwipeThenSuggest: with the user's state cached, a swipe or a
// block followed at once by a suggestions request never returns the swiped
// or blocked user (either way), while concurrent loads of the same user's
// state (forced by purges) race the writes.
func TestCellCacheSwipeThenSuggest(t *testing.T) {
	s := pgtest.OpenWith(t, "test_postgis_excl", withCellCache)
	ctx := context.Background()
	ids := crowd(t, s, 120)
	const swipers = 4
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	// Racing readers and purgers: every purge makes the next request load
	// the state again while the swiper's writes go on.
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				me := ids[i%swipers]
				if r%2 == 0 {
					s.PurgeUserState(ctx, me)
				}
				if _, err := s.Suggestions(ctx, me, 50); err != nil {
					errs <- err
					return
				}
			}
		}(r)
	}
	var sw sync.WaitGroup
	for k := 0; k < swipers; k++ {
		sw.Add(1)
		go func(me int64) {
			defer sw.Done()
			for step := 0; step < 25; step++ {
				got, err := s.Suggestions(ctx, me, 50)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					errs <- fmt.Errorf("user %d: no suggestions at step %d", me, step)
					return
				}
				target := got[0].ID
				if step%5 == 4 {
					if _, err := s.Block(ctx, target, me); err != nil { // blocked by the other: hidden too
						errs <- err
						return
					}
				} else if _, err := s.Swipe(ctx, me, target, store.Pass); err != nil {
					errs <- err
					return
				}
				after, err := s.Suggestions(ctx, me, 50)
				if err != nil {
					errs <- err
					return
				}
				if contains(after, target) {
					errs <- fmt.Errorf("user %d: %d suggested right after the swipe/block at step %d", me, target, step)
					return
				}
			}
		}(ids[k])
	}
	sw.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The blocker side: after A blocks B, B's (cached) suggestions lose A.
	a, b := ids[100], ids[101]
	if got, err := s.Suggestions(ctx, b, 100); err != nil || !contains(got, a) {
		t.Fatalf("before the block %d does not see %d: %v", b, a, err)
	}
	if _, err := s.Block(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Suggestions(ctx, b, 100); err != nil || contains(got, a) {
		t.Fatalf("after %d blocked %d, %d still sees them (err %v)", a, b, b, err)
	}
}

// TestCellCachePreferencesAndLocationInPlace: a preferences change or a
// move is seen by the very next suggestions request of the user.
func TestCellCachePreferencesAndLocationInPlace(t *testing.T) {
	s := pgtest.OpenWith(t, "test_postgis_excl", withCellCache)
	ctx := context.Background()
	ids := crowd(t, s, 30)
	me := ids[0]
	if got, err := s.Suggestions(ctx, me, 50); err != nil || len(got) == 0 {
		t.Fatalf("suggestions = %d, %v", len(got), err)
	}
	if err := s.PutPreferences(ctx, me, store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 20, Genders: []string{"man"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Suggestions(ctx, me, 50); err != nil || len(got) != 0 {
		t.Fatalf("after preferring men: %d suggestions, %v", len(got), err)
	}
	if err := s.PutPreferences(ctx, me, store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 20, Genders: []string{"woman"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetLocation(ctx, me, store.Point{Lat: -33.87, Lng: 151.21}); err != nil { // Sydney: nobody around
		t.Fatal(err)
	}
	if got, err := s.Suggestions(ctx, me, 50); err != nil || len(got) != 0 {
		t.Fatalf("after moving away: %d suggestions, %v", len(got), err)
	}
	if _, err := s.SetLocation(ctx, me, store.Point{Lat: 40.4168, Lng: -3.7038}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Suggestions(ctx, me, 50); err != nil || len(got) == 0 {
		t.Fatalf("after moving back: %d suggestions, %v", len(got), err)
	}
	// Candidate attributes served from the cells follow profile changes.
	other := ids[1]
	p, err := s.AddPhoto(ctx, other, "up.jpg", 5)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Suggestions(ctx, me, 50)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(c store.Candidate) bool { return c.ID == other })
	if i < 0 || got[i].Version != p.Version || !slices.Equal(got[i].Uploads, []string{"up.jpg"}) {
		t.Fatalf("after an upload the cached candidate is %+v, profile %+v", got[i], p)
	}
	if _, err := s.UpdateProfile(ctx, other, store.ProfileUpdate{Name: "x", Age: 30, Gender: "woman", Active: false}, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Suggestions(ctx, me, 50); err != nil || contains(got, other) {
		t.Fatalf("a deactivated user is still suggested (err %v)", err)
	}
}

// TestCellCacheUserStateSharedThroughRedis: two origins sharing a Redis;
// a swipe through one drops the swiper's cached state in the other, whose
// next suggestions no longer list the swiped user.
func TestCellCacheUserStateSharedThroughRedis(t *testing.T) {
	ro := tiered.DefaultRedisOptions(testredis.Shared(t))
	ro.KeyPrefix = testredis.Prefix(t)
	shared := func(c *postgis.Config) {
		c.CellCache = postgis.CellCacheConfig{Enabled: true, MaxBytes: 16 << 20, Redis: &ro}
	}
	a := pgtest.OpenWith(t, "test_postgis_excl_redis", shared)
	b, err := postgis.Open(context.Background(), postgis.Config{URL: pgtest.SchemaURL(t, "test_postgis_excl_redis"),
		CellCache: postgis.CellCacheConfig{Enabled: true, MaxBytes: 16 << 20, Redis: &ro}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := context.Background()
	ids := crowd(t, a, 20)
	me := ids[0]
	got, err := a.Suggestions(ctx, me, 50)
	if err != nil || len(got) == 0 {
		t.Fatalf("suggestions = %d, %v", len(got), err)
	}
	target := got[0].ID
	if got, err := b.Suggestions(ctx, me, 50); err != nil || !contains(got, target) {
		t.Fatalf("b before the swipe: %v", err)
	}
	if _, err := b.Swipe(ctx, me, target, store.Like); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, fmt.Sprintf("a to stop suggesting %d to %d after the swipe through b", target, me), func() bool {
		got, err := a.Suggestions(ctx, me, 50)
		if err != nil {
			t.Fatal(err)
		}
		return !contains(got, target)
	})
}

// TestUserStateRefreshAhead: a cached state in the last fifth of its
// lifetime is reloaded in the background on its next read, picking up
// changes that bypassed the store (here a swipe written with SQL) and
// extending its lifetime, without the request waiting for a load.
func TestUserStateRefreshAhead(t *testing.T) {
	const ttl = 3 * time.Second
	s := pgtest.OpenWith(t, "test_postgis_refresh", func(c *postgis.Config) {
		c.CellCache = postgis.CellCacheConfig{Enabled: true, UserTTL: ttl}
	})
	ctx := context.Background()
	ids := crowd(t, s, 2)
	a, b := ids[0], ids[1]
	got, err := s.Suggestions(ctx, a, 10)
	if err != nil || !contains(got, b) {
		t.Fatalf("suggestions before = %v, %v", got, err)
	}
	first := s.UserStateExpires(ctx, a)
	if first.IsZero() {
		t.Fatal("state not cached")
	}
	if _, err := s.Primary().Exec(ctx, `INSERT INTO swipes (swiper_id, target_id, direction) VALUES ($1, $2, -1)`, a, b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(first.Add(-ttl / 8))) // in the last fifth
	if _, err := s.Suggestions(ctx, a, 10); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the state to be reloaded", func() bool { return s.UserStateExpires(ctx, a).After(first) })
	got, err = s.Suggestions(ctx, a, 10)
	if err != nil || contains(got, b) {
		t.Fatalf("after the reload: %v, %v (the SQL swipe of %d should exclude it)", got, err, b)
	}
}
