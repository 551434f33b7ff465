package storetest

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// byCoarseDistance orders users (located at locs[i]) as suggestions for a
// user at from must be: by distance between cell centres, then by id.
func byCoarseDistance(from *store.Point, users []int64, locs []*store.Point) []int64 {
	idx := make([]int, len(users))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		di, dj := coarseDist(from, locs[idx[i]]), coarseDist(from, locs[idx[j]])
		if di != dj {
			return di < dj
		}
		return users[idx[i]] < users[idx[j]]
	})
	out := make([]int64, len(idx))
	for i, k := range idx {
		out[i] = users[k]
	}
	return out
}

// testTies: users in one cell are at one distance; they come in id order,
// and a limit cutting through them returns the lowest ids (pages are
// deterministic).
func testTies(t *testing.T, s store.Store) {
	c := geocache.GridCellOf(59.3293, 18.0686) // Stockholm
	clat, clng := c.Center()
	me := mk(t, s, "me", 30, "man", offset(clat, clng, 2.5, 33), &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 20, Genders: []string{"woman"}})
	var same []int64
	for i := 0; i < 7; i++ {
		same = append(same, mk(t, s, fmt.Sprintf("t%d", i), 30, "woman", pt(clat+float64(i-3)*0.001, clng+float64(3-i)*0.0012), nil))
	}
	for _, limit := range []int{3, 5, 7} {
		got, err := s.Suggestions(ctx(t), me, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(ids(got), same[:limit]) {
			t.Fatalf("limit %d: %v, want %v", limit, ids(got), same[:limit])
		}
	}
}

func testSuggestionFilters(t *testing.T, s store.Store) {
	const lat, lng = 40.4168, -3.7038 // Madrid
	prefs := &store.Preferences{MinAge: 25, MaxAge: 35, MaxDistanceKm: 20, Genders: []string{"woman", "nonbinary"}}
	me := mk(t, s, "me", 30, "man", pt(lat, lng), prefs)
	ok1At, ok2At, passedMeAt := offset(lat, lng, 1, 10), offset(lat, lng, 5, 200), offset(lat, lng, 4, 170)
	ok1 := mk(t, s, "ok1", 25, "woman", ok1At, nil)
	ok2 := mk(t, s, "ok2", 35, "nonbinary", ok2At, nil)
	mk(t, s, "tooYoung", 24, "woman", offset(lat, lng, 1, 90), nil)
	mk(t, s, "tooOld", 36, "woman", offset(lat, lng, 1, 100), nil)
	mk(t, s, "wrongGender", 30, "man", offset(lat, lng, 1, 110), nil)
	mk(t, s, "tooFar", 30, "woman", offset(lat, lng, 25, 120), nil)
	mk(t, s, "noLocation", 30, "woman", nil, nil)
	inactive := mk(t, s, "inactive", 30, "woman", offset(lat, lng, 2, 130), nil)
	if _, err := s.UpdateProfile(ctx(t), inactive, store.ProfileUpdate{Name: "inactive", Age: 30, Gender: "woman", Active: false}, 0); err != nil {
		t.Fatal(err)
	}
	swiped := mk(t, s, "swiped", 30, "woman", offset(lat, lng, 3, 140), nil)
	blockedByMe := mk(t, s, "blockedByMe", 30, "woman", offset(lat, lng, 3, 150), nil)
	blocksMe := mk(t, s, "blocksMe", 30, "woman", offset(lat, lng, 3, 160), nil)
	passedMe := mk(t, s, "passedMe", 28, "woman", passedMeAt, nil)
	if _, err := s.Swipe(ctx(t), me, swiped, store.Pass); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Block(ctx(t), me, blockedByMe); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Block(ctx(t), blocksMe, me); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Swipe(ctx(t), passedMe, me, store.Pass); err != nil {
		t.Fatal(err)
	}
	got, err := s.Suggestions(ctx(t), me, 50)
	if err != nil {
		t.Fatal(err)
	}
	want := byCoarseDistance(pt(lat, lng), []int64{ok1, passedMe, ok2}, []*store.Point{ok1At, passedMeAt, ok2At})
	if !equalIDs(ids(got), want) {
		t.Fatalf("suggestions = %v, want %v", ids(got), want)
	}
	for _, c := range got {
		if c.ID == ok1 {
			if d, w := c.DistanceM, coarseDist(pt(lat, lng), ok1At); math.Abs(d-w) > 1 {
				t.Fatalf("distance of ok1 = %.1f m, want %.1f between the cell centres", d, w)
			}
		}
	}
	if got[0].Name != "ok1" || got[0].Bio != "bio of ok1" || len(got[0].Photos) != 1 {
		t.Fatalf("candidate profile not filled: %+v", got[0])
	}
	_, err = s.Suggestions(ctx(t), me+10000, 10)
	wantErr(t, err, store.ErrNotFound, "suggestions for missing user")
}

func testNearestFirst(t *testing.T, s store.Store) {
	const lat, lng = 35.6762, 139.6503 // Tokyo
	me := mk(t, s, "me", 30, "man", pt(lat, lng), &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 100, Genders: []string{"woman"}})
	var want []int64
	var users []int64
	var locs []*store.Point
	for i := 0; i < 30; i++ {
		// Distances 0.5, 1.0 ... 15 km in scrambled insertion order.
		k := (i*7)%30 + 1
		at := offset(lat, lng, float64(k)*0.5, float64(k*37%360))
		users = append(users, mk(t, s, fmt.Sprintf("u%d", k), 30, "woman", at, nil))
		locs = append(locs, at)
	}
	order := byCoarseDistance(pt(lat, lng), users, locs)
	all, err := s.Suggestions(ctx(t), me, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 30 {
		t.Fatalf("got %d suggestions, want 30", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].DistanceM < all[i-1].DistanceM {
			t.Fatalf("not nearest first at %d: %.1f after %.1f", i, all[i].DistanceM, all[i-1].DistanceM)
		}
	}
	if !equalIDs(ids(all), order) {
		t.Fatalf("order %v, want %v (by distance between cell centres, then id)", ids(all), order)
	}
	for i := 0; i < 10; i++ {
		want = append(want, all[i].ID)
	}
	top, err := s.Suggestions(ctx(t), me, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(ids(top), want) {
		t.Fatalf("limit 10 = %v, want prefix %v", ids(top), want)
	}
	for i, u := range users {
		if u == top[0].ID {
			if d := coarseDist(pt(lat, lng), locs[i]); math.Abs(top[0].DistanceM-d) > 1 {
				t.Fatalf("nearest at %.1f m, want %.1f between the cell centres", top[0].DistanceM, d)
			}
		}
	}
}

func testFiji(t *testing.T, s store.Store) {
	// Fiji straddles the antimeridian: Taveuni is at ~179.9°W/E. Users 10 km
	// apart on either side of ±180° must see each other; one far away must not.
	prefs := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 30, Genders: []string{"woman", "man", "nonbinary"}}
	east := mk(t, s, "east", 30, "man", pt(-16.8, 179.95), prefs)    // 179.95°E
	west := mk(t, s, "west", 30, "woman", pt(-16.8, -179.95), prefs) // 179.95°W
	near := mk(t, s, "nearEast", 30, "woman", pt(-16.9, 179.9), prefs)
	mk(t, s, "suva", 30, "woman", pt(-18.1416, 178.4415), prefs) // ~170 km away
	got, err := s.Suggestions(ctx(t), east, 10)
	if err != nil {
		t.Fatal(err)
	}
	dEW := coarseDist(pt(-16.8, 179.95), pt(-16.8, -179.95))
	dEN := coarseDist(pt(-16.8, 179.95), pt(-16.9, 179.9))
	want := []int64{west, near}
	if dEN < dEW {
		want = []int64{near, west}
	}
	if !equalIDs(ids(got), want) {
		t.Fatalf("east sees %v, want %v (distances %.0f m, %.0f m)", ids(got), want, dEW, dEN)
	}
	for _, c := range got {
		if c.ID == west && math.Abs(c.DistanceM-dEW) > 1 {
			t.Fatalf("distance across the antimeridian = %.0f m, want ~%.0f m", c.DistanceM, dEW)
		}
	}
	got, err = s.Suggestions(ctx(t), west, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := map[int64]bool{}
	for _, c := range got {
		found[c.ID] = true
	}
	if !found[east] || !found[near] || len(got) != 2 {
		t.Fatalf("west sees %v, want east %d and nearEast %d", ids(got), east, near)
	}
}

func testNoLocation(t *testing.T, s store.Store) {
	me := mk(t, s, "me", 30, "man", nil, nil)
	_, err := s.Suggestions(ctx(t), me, 10)
	wantErr(t, err, store.ErrNoLocation, "suggestions without location")
}
