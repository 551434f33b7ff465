// Package storetest is the conformance suite every store.Store implementation
// must pass. Implementations call Run from their own tests with a factory that
// returns an empty store.
package storetest

import (
	"context"
	"errors"
	"math"
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
		{"EventsFollowWrites", testEventsFollowWrites},
		{"BlockEndingMatchAppendsUnmatch", testBlockEndingMatchAppends},
		{"FailedWritesAppendNothing", testFailedWritesAppendNothing},
		{"EventsPaging", testEventsPaging},
		{"EventRetention", testEventRetention},
		{"ConcurrentSendsBothWays", testConcurrentSendsBothWays},
		{"SendBatch", testSendBatch},
		{"Devices", testDevices},
		{"ConcurrentDevicesKeepTheLimit", testConcurrentDevicesKeepTheLimit},
		{"ReadMark", testReadMark},
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
