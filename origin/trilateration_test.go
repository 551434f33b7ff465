package origin_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
)

// The attack of issue 10, item 1, through the HTTP API: an attacker moves
// their own location (PUT /api/users/me/location) and reads a target's
// distance_km in their suggestions. Walking from a start point along six
// bearings until the reading changes, then bisecting to 5 m, gives points
// where the target's distance crosses a rounding boundary (k + 0.5 km);
// trilaterating those gives the target's position. With exact coordinates
// that is metres off. With coarse stored points, distances between cell
// centres and bucketed readings, no target is recovered more precisely than
// its cell.

// attacker drives one attacking user through the API.
type attacker struct {
	t    *testing.T
	api  *api
	tok  string
	hits int // location updates sent
}

const attackBearings = 6

// observe moves the attacker to p and returns everyone's distance_km.
func (a *attacker) observe(p [2]float64) map[int64]int64 {
	a.t.Helper()
	a.hits++
	r := a.api.do("PUT", "/api/users/me/location", a.tok, fmt.Sprintf(`{"lat":%v,"lng":%v}`, p[0], p[1]))
	expect(a.t, r, 200, "attacker moves")
	r = a.api.do("GET", "/api/matches/suggestions?limit=100&fields=id,distance_km", a.tok, "")
	expect(a.t, r, 200, "attacker reads")
	var out struct {
		Suggestions []struct {
			ID         int64 `json:"id"`
			DistanceKm int64 `json:"distance_km"`
		} `json:"suggestions"`
	}
	r.json(a.t, &out)
	m := make(map[int64]int64, len(out.Suggestions))
	for _, s := range out.Suggestions {
		m[s.ID] = s.DistanceKm
	}
	return m
}

// locate runs the attack on target from start. watch lists other users
// whose readings are recorded at every step too (the attacker's position
// is the same for all of them at that moment); it returns the estimate and,
// per watched user, whether each of its readings equalled the target's.
func (a *attacker) locate(target int64, start [2]float64, watch ...int64) (est [2]float64, sameReadings map[int64]bool) {
	a.t.Helper()
	sameReadings = map[int64]bool{}
	for _, w := range watch {
		sameReadings[w] = true
	}
	read := func(p [2]float64) int64 {
		m := a.observe(p)
		v, ok := m[target]
		if !ok {
			a.t.Fatalf("target %d not in the attacker's suggestions at %v", target, p)
		}
		for _, w := range watch {
			if m[w] != v {
				sameReadings[w] = false
			}
		}
		return v
	}
	type flip struct {
		at     [2]float64
		radius float64 // metres: where the reading changes
	}
	var flips []flip
	v0 := read(start)
	for k := 0; k < attackBearings; k++ {
		bearing := float64(k) * 360 / attackBearings
		lo, hi, vlo, vhi := 0.0, 0.0, v0, v0
		for s := 500.0; s <= 12000; s += 500 {
			if v := read(offsetM(start, s, bearing)); v != v0 {
				hi, vhi = s, v
				break
			}
			lo = s
		}
		if hi == 0 {
			continue
		}
		for hi-lo > 5 {
			mid := (lo + hi) / 2
			if v := read(offsetM(start, mid, bearing)); v == vlo {
				lo = mid
			} else {
				hi, vhi = mid, v
			}
		}
		flips = append(flips, flip{offsetM(start, (lo+hi)/2, bearing), float64(vlo+vhi) / 2 * 1000})
	}
	if len(flips) < 3 {
		a.t.Fatalf("target %d: only %d flip points", target, len(flips))
	}
	// Least squares on a local plane: a coarse grid, then finer ones.
	cost := func(p [2]float64) float64 {
		c := 0.0
		for _, f := range flips {
			d := geocache.DistanceM(p[0], p[1], f.at[0], f.at[1]) - f.radius
			c += d * d
		}
		return c
	}
	best := start
	for _, step := range []float64{250, 50, 10, 2, 0.5} {
		centre := best
		for i := -30; i <= 30; i++ {
			for j := -30; j <= 30; j++ {
				p := offsetM(offsetM(centre, float64(i)*step, 0), float64(j)*step, 90)
				if cost(p) < cost(best) {
					best = p
				}
			}
		}
	}
	return best, sameReadings
}

func offsetM(p [2]float64, m, bearing float64) [2]float64 {
	q := offsetKm(p[0], p[1], m/1000, bearing)
	return [2]float64{q.Lat, q.Lng}
}

// offsetKm moves dKm from (lat, lng) along a bearing.
func offsetKm(lat, lng, dKm, bearingDeg float64) store.Point {
	r := dKm * 1000 / geocache.EarthRadiusM
	b := bearingDeg * math.Pi / 180
	p1, l1 := lat*math.Pi/180, lng*math.Pi/180
	p2 := math.Asin(math.Sin(p1)*math.Cos(r) + math.Cos(p1)*math.Sin(r)*math.Cos(b))
	l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(r)*math.Cos(p1), math.Cos(r)-math.Sin(p1)*math.Sin(p2))
	return store.Point{Lat: p2 * 180 / math.Pi, Lng: math.Mod(l2*180/math.Pi+540, 360) - 180}
}

// newAttackAPI serves st with the location limit switched off, as a load
// test would run it: the attacker may move as often as they like.
func newAttackAPI(t *testing.T, st store.Store) *api {
	t.Helper()
	auth, err := origin.NewAuthenticator(testSecret, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := origin.NewServer(origin.ServerOptions{Store: st, StoreName: "test", Auth: auth, LocationLimit: &origin.RateLimit{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &api{t: t, srv: hs, st: st}
}

// TestTrilaterationAttack: 24 random targets within 4 km of Berlin's
// centre, attacked one by one: the mean error of the recovered positions
// is at least 300 m (a cell's centre is 380 m from a random point of it on
// average), and two targets in one cell give the attacker the very same
// reading at every step, so nothing tells them apart.
func TestTrilaterationAttack(t *testing.T) {
	onEachStore(t, testTrilateration)
}

func testTrilateration(t *testing.T, st store.Store) {
	a := newAttackAPI(t, st)
	centre := [2]float64{52.5200, 13.4050}
	rng := rand.New(rand.NewPCG(10, 1))
	all := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 100, Genders: store.AllGenders()}
	type target struct {
		id int64
		at [2]float64
	}
	var targets []target
	for i := 0; i < 24; i++ {
		p := offsetM(centre, 4000*math.Sqrt(rng.Float64()), rng.Float64()*360)
		targets = append(targets, target{mkUser(t, st, "t"+strconv.Itoa(i), 30, "woman", p[0], p[1], nil), p})
	}
	// Two more, 600 m apart inside one cell.
	cell := geocache.GridCellOf(52.5400, 13.3700)
	clat, clng := cell.Center()
	twinA, twinB := [2]float64{clat - 0.0027, clng - 0.0025}, [2]float64{clat + 0.0027, clng + 0.0025}
	if geocache.GridCellOf(twinA[0], twinA[1]) != cell || geocache.GridCellOf(twinB[0], twinB[1]) != cell {
		t.Fatal("twins are not in one cell")
	}
	ta := mkUser(t, st, "twinA", 30, "woman", twinA[0], twinA[1], nil)
	tb := mkUser(t, st, "twinB", 30, "woman", twinB[0], twinB[1], nil)
	att := &attacker{t: t, api: a, tok: token(t, mkUser(t, st, "attacker", 30, "man", centre[0], centre[1], all))}

	var sum, ideal float64
	for _, tg := range targets {
		est, _ := att.locate(tg.id, centre)
		e := geocache.DistanceM(est[0], est[1], tg.at[0], tg.at[1])
		clat, clng := geocache.SnapToGrid(tg.at[0], tg.at[1])
		ideal += geocache.DistanceM(clat, clng, tg.at[0], tg.at[1])
		sum += e
	}
	mean := sum / float64(len(targets))
	t.Logf("%d targets, %d moves: mean error %.0f m (a cell's centre: %.0f m)", len(targets), att.hits, mean, ideal/float64(len(targets)))
	if mean < 300 {
		t.Errorf("the attack recovered targets to %.0f m on average; the promise is about 1 km, the bound 300 m", mean)
	}
	est, same := att.locate(ta, centre, tb)
	if !same[tb] {
		t.Errorf("two users in one cell, 600 m apart, gave different readings: the attacker tells them apart")
	}
	ea := geocache.DistanceM(est[0], est[1], twinA[0], twinA[1])
	eb := geocache.DistanceM(est[0], est[1], twinB[0], twinB[1])
	t.Logf("twins: estimate %.0f m from A, %.0f m from B", ea, eb)
}

// TestLocationRateLimit: with the default limit an attacker gets 10 moves,
// then 429 problems with Retry-After, and a refused move changes nothing;
// other users keep their own allowance.
func TestLocationRateLimit(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			a := newAPI(t, st) // the default limit
			centre := [2]float64{52.52, 13.405}
			all := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 100, Genders: store.AllGenders()}
			target := mkUser(t, st, "target", 30, "woman", 52.53, 13.42, nil)
			me := mkUser(t, st, "attacker", 30, "man", centre[0], centre[1], all)
			other := mkUser(t, st, "other", 30, "man", centre[0], centre[1], all)
			tok := token(t, me)
			distance := func() string {
				r := a.do("GET", "/api/matches/suggestions?fields=id,distance_km", tok, "")
				expect(t, r, 200, "suggestions")
				return r.body
			}
			var limited resp
			moves := 0
			for k := 0; k < 40; k++ {
				p := offsetM(centre, float64(k%5)*2000, 90)
				r := a.do("PUT", "/api/users/me/location", tok, fmt.Sprintf(`{"lat":%v,"lng":%v}`, p[0], p[1]))
				if r.code == 200 {
					moves++
					continue
				}
				expect(t, r, http.StatusTooManyRequests, "move past the limit")
				limited = r
				before := distance()
				far := offsetM(centre, 30000, 0)
				r = a.do("PUT", "/api/users/me/location", tok, fmt.Sprintf(`{"lat":%v,"lng":%v}`, far[0], far[1]))
				expect(t, r, http.StatusTooManyRequests, "another move past the limit")
				if after := distance(); after != before {
					t.Fatalf("a refused move changed what the attacker sees: %s -> %s", before, after)
				}
				break
			}
			if moves != origin.DefaultLocationLimit.Burst || limited.code == 0 {
				t.Fatalf("%d moves accepted before a 429, want %d", moves, origin.DefaultLocationLimit.Burst)
			}
			ra, err := strconv.Atoi(limited.hdr.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 30 || !strings.Contains(limited.hdr.Get("Cache-Control"), "no-store") {
				t.Fatalf("429: Retry-After %q, Cache-Control %q", limited.hdr.Get("Retry-After"), limited.hdr.Get("Cache-Control"))
			}
			if problemCode(t, limited) != "too-many-location-updates" {
				t.Fatalf("429 problem %s", limited.body)
			}
			r := a.do("PUT", "/api/users/me/location", token(t, other), `{"lat":52.5,"lng":13.4}`)
			expect(t, r, 200, "another user's move")
			_ = target
		})
	}
}
