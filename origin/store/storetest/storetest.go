// Package storetest is the conformance suite every store.Store implementation
// must pass. Implementations call Run from their own tests with a factory that
// returns an empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// Factory returns an empty store for one subtest; it registers its own cleanup.
type Factory func(t *testing.T) store.Store

// Run runs the whole conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"ProfileRoundTrip", testProfile},
		{"ProfileIfVersion", testProfileIfVersion},
		{"Preferences", testPreferences},
		{"Location", testLocation},
		{"LocationIsCoarse", testCoarseLocation},
		{"LocationHysteresis", testLocationHysteresis},
		{"SuggestionsTiesInOneCell", testTies},
		{"SuggestionFilters", testSuggestionFilters},
		{"SuggestionsNearestFirstAndLimit", testNearestFirst},
		{"SuggestionsAcrossAntimeridianFiji", testFiji},
		{"SuggestionsNoLocation", testNoLocation},
		{"SwipeIdempotentAndMatch", testSwipe},
		{"ConcurrentMutualLikeMakesOneMatch", testConcurrentMatch},
		{"BlockHidesAndEndsMatch", testBlock},
		{"BlockedWith", testBlockedWith},
		{"Unmatch", testUnmatch},
		{"ChatPagingIdempotencyUnread", testChat},
		{"ChatParticipantsOnly", testChatParticipants},
		{"SQLLookingStringsStoredVerbatim", testSQLStrings},
		{"UploadedPhotos", testPhotos},
		{"ConcurrentUploadsKeepTheLimit", testConcurrentPhotos},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// mk creates a user; loc may be nil.
func mk(t *testing.T, s store.Store, name string, age int16, gender string, loc *store.Point, prefs *store.Preferences) int64 {
	t.Helper()
	id, err := s.CreateUser(ctx(t), store.NewUser{
		Profile:     store.ProfileUpdate{Name: name, Age: age, Gender: gender, Bio: "bio of " + name, Photos: []string{"https://img.example/" + name + ".jpg"}, Active: true},
		Preferences: prefs, Location: loc,
	})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return id
}

func pt(lat, lng float64) *store.Point { return &store.Point{Lat: lat, Lng: lng} }

// snapped is the point a store keeps for a first report of p: its cell
// centre on the coarse grid.
func snapped(p *store.Point) store.Point {
	lat, lng := geocache.SnapToGrid(p.Lat, p.Lng)
	return store.Point{Lat: lat, Lng: lng}
}

// coarseDist is the distance suggestions report between two users first
// located at a and b: between their cell centres.
func coarseDist(a, b *store.Point) float64 {
	sa, sb := snapped(a), snapped(b)
	return geocache.DistanceM(sa.Lat, sa.Lng, sb.Lat, sb.Lng)
}

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

// offset returns a point dKm north-east-ish of (lat,lng) along a bearing.
func offset(lat, lng, dKm, bearingDeg float64) *store.Point {
	r := dKm * 1000 / geocache.EarthRadiusM
	b := bearingDeg * math.Pi / 180
	p1, l1 := lat*math.Pi/180, lng*math.Pi/180
	p2 := math.Asin(math.Sin(p1)*math.Cos(r) + math.Cos(p1)*math.Sin(r)*math.Cos(b))
	l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(r)*math.Cos(p1), math.Cos(r)-math.Sin(p1)*math.Sin(p2))
	lng2 := math.Mod(l2*180/math.Pi+540, 360) - 180
	return pt(p2*180/math.Pi, lng2)
}

func ids(cs []store.Candidate) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testProfile(t *testing.T, s store.Store) {
	id := mk(t, s, "ana", 30, "woman", nil, nil)
	p, err := s.GetProfile(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Name != "ana" || p.Age != 30 || p.Gender != "woman" || !p.Active || len(p.Photos) != 1 || p.Version < 1 {
		t.Fatalf("unexpected profile %+v", p)
	}
	_, err = s.GetProfile(ctx(t), id+1000)
	wantErr(t, err, store.ErrNotFound, "missing profile")
	up, err := s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "Ana María", Age: 31, Gender: "nonbinary", Bio: "héllo 👋", Photos: nil, Active: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if up.Version <= p.Version || up.Name != "Ana María" || up.Bio != "héllo 👋" || len(up.Photos) != 0 || up.Photos == nil {
		t.Fatalf("update: %+v (was version %d)", up, p.Version)
	}
	got, _ := s.GetProfile(ctx(t), id)
	if got.Version != up.Version || got.Age != 31 {
		t.Fatalf("get after update: %+v", got)
	}
	_, err = s.UpdateProfile(ctx(t), id+1000, store.ProfileUpdate{Name: "x", Age: 20, Gender: "man", Active: true}, 0)
	wantErr(t, err, store.ErrNotFound, "update missing profile")
}

func testProfileIfVersion(t *testing.T, s store.Store) {
	id := mk(t, s, "bo", 25, "man", nil, nil)
	p, _ := s.GetProfile(ctx(t), id)
	u1, err := s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "bo1", Age: 25, Gender: "man", Active: true}, p.Version)
	if err != nil {
		t.Fatalf("first conditional update: %v", err)
	}
	_, err = s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "bo2", Age: 25, Gender: "man", Active: true}, p.Version)
	wantErr(t, err, store.ErrPreconditionFailed, "lost update")
	got, _ := s.GetProfile(ctx(t), id)
	if got.Name != "bo1" || got.Version != u1.Version {
		t.Fatalf("lost update was applied: %+v", got)
	}
}

func testPreferences(t *testing.T, s store.Store) {
	id := mk(t, s, "cy", 40, "woman", nil, nil)
	p, err := s.GetPreferences(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	def := store.DefaultPreferences()
	if p.MinAge != def.MinAge || p.MaxAge != def.MaxAge || p.MaxDistanceKm != def.MaxDistanceKm || len(p.Genders) != len(def.Genders) {
		t.Fatalf("defaults: %+v", p)
	}
	want := store.Preferences{MinAge: 30, MaxAge: 45, MaxDistanceKm: 12, Genders: []string{"man"}}
	if err := s.PutPreferences(ctx(t), id, want); err != nil {
		t.Fatal(err)
	}
	if p, err = s.GetPreferences(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if p.MinAge != 30 || p.MaxAge != 45 || p.MaxDistanceKm != 12 || len(p.Genders) != 1 || p.Genders[0] != "man" {
		t.Fatalf("stored prefs: %+v", p)
	}
	wantErr(t, s.PutPreferences(ctx(t), id+999, want), store.ErrNotFound, "prefs of missing user")
	_, err = s.GetPreferences(ctx(t), id+999)
	wantErr(t, err, store.ErrNotFound, "get prefs of missing user")
}

func testLocation(t *testing.T, s store.Store) {
	id := mk(t, s, "di", 22, "woman", nil, nil)
	ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: 48.8566, Lng: 2.3522})
	if err != nil {
		t.Fatal(err)
	}
	paris, london := snapped(pt(48.8566, 2.3522)), snapped(pt(51.5072, -0.1276))
	if ch.OldCell != "" || ch.NewCell != geocache.Cell(paris.Lat, paris.Lng, store.CellPrecision) || ch.Stored != paris || ch.Kept {
		t.Fatalf("first change: %+v", ch)
	}
	ch2, err := s.SetLocation(ctx(t), id, store.Point{Lat: 51.5072, Lng: -0.1276})
	if err != nil {
		t.Fatal(err)
	}
	if ch2.OldCell != ch.NewCell || ch2.NewCell != geocache.Cell(london.Lat, london.Lng, store.CellPrecision) || ch2.Stored != london || ch2.Kept {
		t.Fatalf("second change: %+v", ch2)
	}
	_, err = s.SetLocation(ctx(t), id+999, store.Point{Lat: 1, Lng: 1})
	wantErr(t, err, store.ErrNotFound, "location of missing user")
	for _, bad := range []store.Point{{Lat: 91}, {Lng: -181}, {Lat: math.NaN()}, {Lng: math.Inf(1)}} {
		_, err = s.SetLocation(ctx(t), id, bad)
		wantErr(t, err, store.ErrInvalid, fmt.Sprintf("bad point %v", bad))
	}
}

// testCoarseLocation: what is stored is the centre of the reported point's
// cell, for new users and moves alike; suggestions measure between centres,
// so two users anywhere in one cell are the same distance from everyone.
func testCoarseLocation(t *testing.T, s store.Store) {
	const lat, lng = 52.5200, 13.4050 // Berlin
	c := geocache.GridCellOf(lat, lng)
	clat, clng := c.Center()
	// Two points of the same cell, on either side of its centre.
	inA, inB := pt(clat-0.003, clng-0.004), pt(clat+0.0035, clng+0.005)
	if geocache.GridCellOf(inA.Lat, inA.Lng) != c || geocache.GridCellOf(inB.Lat, inB.Lng) != c {
		t.Fatal("test points left the cell")
	}
	prefs := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 50, Genders: []string{"woman"}}
	askers := []*store.Point{offset(lat, lng, 3.3, 20), offset(lat, lng, 7.9, 250), offset(lat, lng, 0.9, 130)}
	var me []int64
	for i, at := range askers {
		me = append(me, mk(t, s, fmt.Sprintf("asker%d", i), 30, "man", at, prefs))
	}
	a := mk(t, s, "a", 30, "woman", inA, nil)
	b := mk(t, s, "b", 30, "woman", inB, nil)
	for i, asker := range me {
		got, err := s.Suggestions(ctx(t), asker, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(ids(got), []int64{a, b}) {
			t.Fatalf("asker %d sees %v, want [%d %d] (equal distances, by id)", i, ids(got), a, b)
		}
		want := geocache.DistanceM(clat, clng, snapped(askers[i]).Lat, snapped(askers[i]).Lng)
		if got[0].DistanceM != got[1].DistanceM || math.Abs(got[0].DistanceM-want) > 1 {
			t.Fatalf("asker %d: distances %.3f and %.3f m, want both %.3f (cell centre to cell centre)", i, got[0].DistanceM, got[1].DistanceM, want)
		}
	}
	// A moved user is stored at the centre of the new cell.
	far := offset(lat, lng, 25, 75)
	ch, err := s.SetLocation(ctx(t), a, *far)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kept || ch.Stored != snapped(far) || ch.NewCell != geocache.Cell(ch.Stored.Lat, ch.Stored.Lng, store.CellPrecision) ||
		ch.OldCell != geocache.Cell(clat, clng, store.CellPrecision) {
		t.Fatalf("move: %+v, want stored %v", ch, snapped(far))
	}
	got, err := s.Suggestions(ctx(t), me[0], 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ID != a || math.Abs(got[1].DistanceM-coarseDist(askers[0], far)) > 1 {
		t.Fatalf("after the move: %+v", got)
	}
}

// testLocationHysteresis: a report inside the current cell, or within 0 m
// of it, keeps the stored point; one beyond the largest margin moves it to
// the new cell's centre; in between, either — never anything else.
func testLocationHysteresis(t *testing.T, s store.Store) {
	c := geocache.GridCellOf(-33.8688, 151.2093) // Sydney
	clat, clng := c.Center()
	id := mk(t, s, "walker", 30, "woman", pt(clat, clng), nil)
	north := geocache.GridCell{Row: c.Row + 1, Col: geocache.GridCellOf(clat+geocache.GridRowHeightDeg, clng).Col}
	nlat, nlng := north.Center()
	edge := clat + geocache.GridRowHeightDeg/2 // the boundary with the row to the north
	const mPerDeg = geocache.EarthRadiusM * math.Pi / 180
	for i, step := range []struct {
		lat, lng   float64
		keep, move bool // keep: must keep; move: must move north
	}{
		{clat + 0.002, clng + 0.003, true, false},     // inside the cell
		{edge - 1/mPerDeg, clng - 0.002, true, false}, // a metre inside the edge
		{edge + 100/mPerDeg, clng, false, false},      // 100 m past it: margin decides
		{edge + 250/mPerDeg, clng, false, false},      // 250 m past it: margin decides
		{edge + 450/mPerDeg, clng, false, true},       // beyond any margin
	} {
		// Start each step from the cell's centre.
		if _, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat + 0.03, Lng: clng}); err != nil {
			t.Fatal(err)
		}
		if ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat, Lng: clng}); err != nil || ch.Stored != (store.Point{Lat: clat, Lng: clng}) {
			t.Fatalf("step %d: back to the centre: %+v %v", i, ch, err)
		}
		ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: step.lat, Lng: step.lng})
		if err != nil {
			t.Fatal(err)
		}
		kept := ch.Stored == store.Point{Lat: clat, Lng: clng}
		moved := ch.Stored == store.Point{Lat: nlat, Lng: nlng}
		switch {
		case !kept && !moved:
			t.Fatalf("step %d: stored %+v: neither the old centre nor the northern neighbour's", i, ch.Stored)
		case kept != ch.Kept || (kept && ch.NewCell != ch.OldCell):
			t.Fatalf("step %d: change %+v contradicts itself", i, ch)
		case step.keep && !kept:
			t.Fatalf("step %d: a report inside the cell moved the user to %+v", i, ch.Stored)
		case step.move && !moved:
			t.Fatalf("step %d: a report %0.f m past the edge kept the user", i, (step.lat-edge)*mPerDeg)
		}
	}
	// 100 m past the edge over many updates: both outcomes occur (the
	// margin is drawn per update), so the crossing line is not fixed.
	seen := map[bool]int{}
	for i := 0; i < 60 && len(seen) < 2; i++ {
		if _, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat, Lng: clng}); err != nil {
			t.Fatal(err)
		}
		ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: edge + 150/mPerDeg, Lng: clng})
		if err != nil {
			t.Fatal(err)
		}
		seen[ch.Kept]++
	}
	if len(seen) < 2 {
		t.Fatalf("150 m past the edge: always kept=%v in 60 updates; the margin is not drawn per update", seen)
	}
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
	if err := s.Block(ctx(t), me, blockedByMe); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(ctx(t), blocksMe, me); err != nil {
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

func testSwipe(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", pt(1, 1), nil)
	b := mk(t, s, "b", 30, "woman", pt(1, 1.01), nil)
	c := mk(t, s, "c", 30, "woman", pt(1, 1.02), nil)
	r, err := s.Swipe(ctx(t), a, b, store.Like)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Match != nil {
		t.Fatalf("first like: %+v", r)
	}
	r, err = s.Swipe(ctx(t), a, b, store.Like)
	if err != nil || r.Created || r.Match != nil {
		t.Fatalf("repeated like: %+v, %v", r, err)
	}
	_, err = s.Swipe(ctx(t), a, b, store.Pass)
	wantErr(t, err, store.ErrConflict, "changing a swipe")
	_, err = s.Swipe(ctx(t), a, a, store.Like)
	wantErr(t, err, store.ErrInvalid, "self swipe")
	_, err = s.Swipe(ctx(t), a, b+1000, store.Like)
	wantErr(t, err, store.ErrNotFound, "swipe on missing user")
	_, err = s.Swipe(ctx(t), a, b, store.Direction("love"))
	wantErr(t, err, store.ErrInvalid, "bad direction")

	r, err = s.Swipe(ctx(t), b, a, store.Superlike)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Match == nil || r.Match.ConversationID == 0 || r.Match.PeerID != a {
		t.Fatalf("mutual like: %+v", r)
	}
	r2, err := s.Swipe(ctx(t), b, a, store.Superlike)
	if err != nil || r2.Created || r2.Match == nil || r2.Match.ID != r.Match.ID {
		t.Fatalf("repeated mutual like: %+v, %v", r2, err)
	}
	// A pass never matches.
	if _, err := s.Swipe(ctx(t), c, a, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err = s.Swipe(ctx(t), a, c, store.Pass)
	if err != nil || r.Match != nil {
		t.Fatalf("pass after like: %+v, %v", r, err)
	}
	for _, u := range []int64{a, b} {
		ms, err := s.ListMatches(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].PeerID != a+b-u {
			t.Fatalf("matches of %d: %+v", u, ms)
		}
		cs, err := s.ListConversations(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != ms[0].ConversationID || cs[0].LastMessage != nil || cs[0].UnreadCount != 0 {
			t.Fatalf("conversations of %d: %+v", u, cs)
		}
	}
	ms, _ := s.ListMatches(ctx(t), c)
	if len(ms) != 0 {
		t.Fatalf("c has matches %+v", ms)
	}
}

func testConcurrentMatch(t *testing.T, s store.Store) {
	for round := 0; round < 5; round++ {
		a := mk(t, s, "a", 30, "man", nil, nil)
		b := mk(t, s, "b", 30, "woman", nil, nil)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, p := range [][2]int64{{a, b}, {b, a}} {
			wg.Add(1)
			go func(x, y int64) {
				defer wg.Done()
				_, err := s.Swipe(context.Background(), x, y, store.Like)
				errs <- err
			}(p[0], p[1])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ms, err := s.ListMatches(ctx(t), a)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 {
			t.Fatalf("round %d: concurrent mutual likes made %d matches, want 1", round, len(ms))
		}
	}
}

func testBlock(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", pt(10, 10), nil)
	b := mk(t, s, "b", 30, "woman", pt(10, 10.01), nil)
	if _, err := s.Swipe(ctx(t), a, b, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err := s.Swipe(ctx(t), b, a, store.Like)
	if err != nil || r.Match == nil {
		t.Fatalf("match: %+v %v", r, err)
	}
	if err := s.Block(ctx(t), b, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(ctx(t), b, a); err != nil {
		t.Fatalf("repeated block: %v", err)
	}
	wantErr(t, s.Block(ctx(t), a, a), store.ErrInvalid, "block self")
	wantErr(t, s.Block(ctx(t), a, b+1000), store.ErrNotFound, "block missing")
	ms, _ := s.ListMatches(ctx(t), a)
	if len(ms) != 0 {
		t.Fatalf("match survived a block: %+v", ms)
	}
	_, _, err = s.SendMessage(ctx(t), a, r.Match.ConversationID, "hi", "m1")
	wantErr(t, err, store.ErrNotFound, "message after block")
}

func testBlockedWith(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", nil, nil)
	b := mk(t, s, "b", 30, "woman", nil, nil)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	d := mk(t, s, "d", 30, "woman", nil, nil)
	e := mk(t, s, "e", 30, "woman", nil, nil)
	for _, blk := range [][2]int64{{a, b}, {c, a}, {a, d}, {d, a}} {
		if err := s.Block(ctx(t), blk[0], blk[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id   int64
		max  int
		want []int64
	}{{a, 10, []int64{b, c, d}}, {a, 2, []int64{b, c}}, {a, 0, nil}, {b, 10, []int64{a}}, {c, 10, []int64{a}}, {e, 10, nil}} {
		got, err := s.BlockedWith(ctx(t), tc.id, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(got, tc.want) {
			t.Fatalf("BlockedWith(%d, %d) = %v, want %v", tc.id, tc.max, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b int64
		want bool
	}{{a, b, true}, {b, a, true}, {a, c, true}, {c, a, true}, {a, d, true}, {b, c, false}, {a, e, false}, {e, a, false}} {
		got, err := s.Blocked(ctx(t), tc.a, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("Blocked(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func testUnmatch(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "man", nil, nil)
	b := mk(t, s, "b", 30, "woman", nil, nil)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	if _, err := s.Swipe(ctx(t), a, b, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err := s.Swipe(ctx(t), b, a, store.Like)
	if err != nil || r.Match == nil {
		t.Fatalf("match: %+v %v", r, err)
	}
	_, err = s.Unmatch(ctx(t), c, r.Match.ID)
	wantErr(t, err, store.ErrNotFound, "unmatch by outsider")
	m, err := s.Unmatch(ctx(t), a, r.Match.ID)
	if err != nil || m.ID != r.Match.ID || m.PeerID != b {
		t.Fatalf("unmatch: %+v %v", m, err)
	}
	_, err = s.Unmatch(ctx(t), b, r.Match.ID)
	wantErr(t, err, store.ErrNotFound, "second unmatch")
	for _, u := range []int64{a, b} {
		ms, _ := s.ListMatches(ctx(t), u)
		cs, _ := s.ListConversations(ctx(t), u)
		if len(ms) != 0 || len(cs) != 0 {
			t.Fatalf("after unmatch user %d has %d matches, %d conversations", u, len(ms), len(cs))
		}
	}
	_, err = s.ListMessages(ctx(t), a, r.Match.ConversationID, 0, 10)
	wantErr(t, err, store.ErrNotFound, "history after unmatch")
}

func matchPair(t *testing.T, s store.Store) (a, b, conv int64) {
	t.Helper()
	a = mk(t, s, "a", 30, "man", nil, nil)
	b = mk(t, s, "b", 30, "woman", nil, nil)
	if _, err := s.Swipe(ctx(t), a, b, store.Like); err != nil {
		t.Fatal(err)
	}
	r, err := s.Swipe(ctx(t), b, a, store.Like)
	if err != nil || r.Match == nil {
		t.Fatalf("match: %+v %v", r, err)
	}
	return a, b, r.Match.ConversationID
}

func testChat(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	var sent []store.Message
	for i := 0; i < 25; i++ {
		from := a
		if i%3 == 2 {
			from = b
		}
		m, created, err := s.SendMessage(ctx(t), from, conv, fmt.Sprintf("msg %d", i), fmt.Sprintf("c-%d", i))
		if err != nil || !created {
			t.Fatalf("send %d: created=%v err=%v", i, created, err)
		}
		if m.ID == 0 || m.SenderID != from || m.ConversationID != conv || m.CreatedAt.IsZero() {
			t.Fatalf("message %+v", m)
		}
		sent = append(sent, m)
	}
	// Idempotent retry.
	again, created, err := s.SendMessage(ctx(t), a, conv, "msg 0 (retry)", "c-0")
	if err != nil || created || again.ID != sent[0].ID || again.Body != "msg 0" {
		t.Fatalf("retry: %+v created=%v err=%v", again, created, err)
	}
	// The same client id from the other sender is a different message.
	other, created, err := s.SendMessage(ctx(t), b, conv, "b's own c-0", "c-0")
	if err != nil || !created || other.ID == sent[0].ID {
		t.Fatalf("other sender same client id: %+v created=%v err=%v", other, created, err)
	}
	sent = append(sent, other)

	// Keyset paging, newest first, covers everything exactly once.
	var seen []int64
	before := int64(0)
	for page := 0; ; page++ {
		ms, err := s.ListMessages(ctx(t), b, conv, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		if page > 5 || len(ms) > 10 {
			t.Fatalf("paging runaway: page %d len %d", page, len(ms))
		}
		for _, m := range ms {
			seen = append(seen, m.ID)
		}
		before = ms[len(ms)-1].ID
	}
	if len(seen) != len(sent) {
		t.Fatalf("paged %d messages, sent %d", len(seen), len(sent))
	}
	for i := range seen {
		if seen[i] != sent[len(sent)-1-i].ID {
			t.Fatalf("page order at %d: got %d want %d", i, seen[i], sent[len(sent)-1-i].ID)
		}
	}

	// A cursor that is not a message of this conversation yields nothing.
	if ms, err := s.ListMessages(ctx(t), a, conv, other.ID+1000, 10); err != nil || len(ms) != 0 {
		t.Fatalf("unknown cursor: %d messages, %v", len(ms), err)
	}

	unread := func(u int64) int64 {
		t.Helper()
		cs, err := s.ListConversations(ctx(t), u)
		if err != nil || len(cs) != 1 {
			t.Fatalf("conversations of %d: %+v %v", u, cs, err)
		}
		if cs[0].LastMessage == nil || cs[0].LastMessage.ID != other.ID {
			t.Fatalf("last message of %d: %+v", u, cs[0].LastMessage)
		}
		return cs[0].UnreadCount
	}
	// a sent 17 (i%3 != 2 for i<25), b sent 8 + 1.
	if got := unread(a); got != 9 {
		t.Fatalf("unread for a = %d, want 9", got)
	}
	if got := unread(b); got != 17 {
		t.Fatalf("unread for b = %d, want 17", got)
	}
	if err := s.MarkRead(ctx(t), b, conv, sent[9].ID); err != nil {
		t.Fatal(err)
	}
	// Messages 10..24 from a: i%3 != 2 for i in 10..24 -> 10 of them.
	if got := unread(b); got != 10 {
		t.Fatalf("unread for b after read mark = %d, want 10", got)
	}
	// Marking an older message does not move the mark back.
	if err := s.MarkRead(ctx(t), b, conv, sent[1].ID); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 10 {
		t.Fatalf("read mark moved backwards: unread %d", got)
	}
	if err := s.MarkRead(ctx(t), b, conv, other.ID); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 0 {
		t.Fatalf("unread after reading all = %d", got)
	}
	err = s.MarkRead(ctx(t), b, conv, other.ID+1000)
	wantErr(t, err, store.ErrNotFound, "read mark on a missing message")
}

func testChatParticipants(t *testing.T, s store.Store) {
	a, _, conv := matchPair(t, s)
	c := mk(t, s, "c", 30, "woman", nil, nil)
	m, _, err := s.SendMessage(ctx(t), a, conv, "hi", "x1")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.SendMessage(ctx(t), c, conv, "intrude", "x2")
	wantErr(t, err, store.ErrNotFound, "outsider send")
	_, err = s.ListMessages(ctx(t), c, conv, 0, 10)
	wantErr(t, err, store.ErrNotFound, "outsider read")
	wantErr(t, s.MarkRead(ctx(t), c, conv, m.ID), store.ErrNotFound, "outsider mark read")
	cs, _ := s.ListConversations(ctx(t), c)
	if len(cs) != 0 {
		t.Fatalf("outsider sees %+v", cs)
	}
	_, _, err = s.SendMessage(ctx(t), a, conv+1000, "hi", "x3")
	wantErr(t, err, store.ErrNotFound, "missing conversation")
}

func testSQLStrings(t *testing.T, s store.Store) {
	evil := "Robert'); DROP TABLE users;-- \\x00 $1 %s"
	id, err := s.CreateUser(ctx(t), store.NewUser{Profile: store.ProfileUpdate{Name: evil, Age: 30, Gender: "man", Bio: "' OR '1'='1", Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.GetProfile(ctx(t), id)
	if err != nil || p.Name != evil || p.Bio != "' OR '1'='1" {
		t.Fatalf("round trip: %+v %v", p, err)
	}
	a, _, conv := matchPair(t, s)
	m, _, err := s.SendMessage(ctx(t), a, conv, evil, evil)
	if err != nil || m.Body != evil || m.ClientMsgID != evil {
		t.Fatalf("message: %+v %v", m, err)
	}
}

func testPhotos(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "woman", pt(48.85, 2.35), nil)
	b := mk(t, s, "b", 31, "man", pt(48.851, 2.351), nil)
	p, err := s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Uploads == nil || len(p.Uploads) != 0 {
		t.Fatalf("new user's uploads %#v, want empty and non-nil", p.Uploads)
	}
	v := p.Version
	for _, name := range []string{"one.jpg", "two.png"} {
		got, err := s.AddPhoto(ctx(t), a, name, 2)
		if err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		if got.Version <= v || got.Uploads[len(got.Uploads)-1] != name {
			t.Fatalf("add %s: version %d after %d, uploads %v", name, got.Version, v, got.Uploads)
		}
		v = got.Version
	}
	if _, err := s.AddPhoto(ctx(t), a, "three.jpg", 2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("third photo over a limit of 2: %v, want ErrConflict", err)
	}
	if _, err := s.AddPhoto(ctx(t), a, "one.jpg", 5); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same name twice: %v, want ErrConflict", err)
	}
	if _, err := s.AddPhoto(ctx(t), 1<<40, "x.jpg", 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
	// A profile update replaces the photo URLs, never the uploads.
	up, err := s.UpdateProfile(ctx(t), a, store.ProfileUpdate{Name: "a2", Age: 30, Gender: "woman", Photos: nil, Active: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(up.Uploads) != "[one.jpg two.png]" || len(up.Photos) != 0 {
		t.Fatalf("after update: uploads %v, photos %v", up.Uploads, up.Photos)
	}
	cs, err := s.Suggestions(ctx(t), b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != a || fmt.Sprint(cs[0].Uploads) != "[one.jpg two.png]" {
		t.Fatalf("suggestions carry uploads: %+v", cs)
	}
	rm, err := s.RemovePhoto(ctx(t), a, "one.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rm.Uploads) != "[two.png]" || rm.Version <= up.Version {
		t.Fatalf("after remove: uploads %v, version %d after %d", rm.Uploads, rm.Version, up.Version)
	}
	if _, err := s.RemovePhoto(ctx(t), a, "one.jpg"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
	if _, err := s.RemovePhoto(ctx(t), b, "two.png"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing another user's photo: %v, want ErrNotFound", err)
	}
	if _, err := s.AddPhoto(ctx(t), a, "three.jpg", 2); err != nil {
		t.Fatalf("a freed slot: %v", err)
	}
	p, err = s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Uploads) != "[two.png three.jpg]" {
		t.Fatalf("stored uploads %v", p.Uploads)
	}
}

func testConcurrentPhotos(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "woman", nil, nil)
	const n, limit = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddPhoto(context.Background(), a, fmt.Sprintf("p%d.jpg", i), limit)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Fatal(err)
		}
	}
	p, err := s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if ok != limit || len(p.Uploads) != limit {
		t.Fatalf("%d concurrent uploads against a limit of %d: %d accepted, %d stored", n, limit, ok, len(p.Uploads))
	}
}
