package geocache

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randGridPoint draws points everywhere, with extra weight on the poles, the
// antimeridian, the equator and exact row and column edges.
func randGridPoint(rng *rand.Rand) (lat, lng float64) {
	switch rng.IntN(6) {
	case 0: // polar caps
		lat = 90 - rng.Float64()*0.05
		if rng.IntN(2) == 0 {
			lat = -lat
		}
		return lat, rng.Float64()*360 - 180
	case 1: // around the antimeridian
		lng = 180 - rng.Float64()*0.02
		if rng.IntN(2) == 0 {
			lng = -lng
		}
		return rng.Float64()*170 - 85, lng
	case 2: // on a row edge and a column edge
		r := int32(rng.IntN(GridRows))
		n := GridColumns(r)
		c := rng.Int32N(n)
		return -90 + float64(r)*180/GridRows, -180 + float64(c)*360/float64(n)
	case 3: // the equator and the prime meridian
		return (rng.Float64() - 0.5) * 0.02, (rng.Float64() - 0.5) * 0.02
	}
	return rng.Float64()*180 - 90, rng.Float64()*360 - 180
}

// TestGridRows: every row's cells are 1.0-1.05 km wide at the row's centre
// latitude and 1.0 km high, so no cell is finer than the promise; the rows
// at the poles keep three columns.
func TestGridRows(t *testing.T) {
	heightKm := GridRowHeightDeg * metresPerDegree / 1000
	if heightKm < 1 || heightKm > 1.01 {
		t.Fatalf("row height %.4f km", heightKm)
	}
	for r := int32(0); r < GridRows; r++ {
		n := GridColumns(r)
		lat := gridRowCentre(r)
		w := 360 / float64(n) * math.Cos(lat*math.Pi/180) * metresPerDegree / 1000
		if n < 1 || w < 1 || w > 1.05 {
			t.Fatalf("row %d (lat %.4f): %d columns, %.4f km wide", r, lat, n, w)
		}
		// Far from a whole number, so a cosine one ulp off (another libm,
		// PostgreSQL's) gives the same column count.
		v := 360 * math.Cos(lat*math.Pi/180) / GridRowHeightDeg
		if f := v - math.Floor(v); n > 1 && (f < 1e-6 || f > 1-1e-6) {
			t.Fatalf("row %d: column count %v too close to a whole number", r, v)
		}
	}
	if n := GridColumns(0); n != 3 {
		t.Fatalf("south polar row has %d columns", n)
	}
	if n := GridColumns(GridRows - 1); n != 3 {
		t.Fatalf("north polar row has %d columns", n)
	}
}

// TestGridSnapProperties: the cell of a point is in range, its centre lies
// in it (snapping is idempotent), the centre is at most half a cell's
// diagonal away (away from the polar rows, where cells are triangles), and
// ±180° are the same meridian.
func TestGridSnapProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for i := 0; i < 200000; i++ {
		lat, lng := randGridPoint(rng)
		c := GridCellOf(lat, lng)
		if c.Row < 0 || c.Row >= GridRows || c.Col < 0 || c.Col >= GridColumns(c.Row) {
			t.Fatalf("(%v, %v): cell %+v out of range", lat, lng, c)
		}
		clat, clng := c.Center()
		if back := GridCellOf(clat, clng); back != c {
			t.Fatalf("(%v, %v): cell %+v, its centre (%v, %v) is in %+v", lat, lng, c, clat, clng, back)
		}
		if sl, sg := SnapToGrid(clat, clng); sl != clat || sg != clng {
			t.Fatalf("snapping a centre moved it: (%v, %v) -> (%v, %v)", clat, clng, sl, sg)
		}
		if !c.Contains(lat, lng, 0) {
			t.Fatalf("(%v, %v) not within its own cell %+v", lat, lng, c)
		}
		if d := DistanceM(lat, lng, clat, clng); math.Abs(lat) < 89.9 && d > 745 {
			t.Fatalf("(%v, %v) is %.0f m from its cell's centre", lat, lng, d)
		}
		if math.Abs(lng) == 180 && GridCellOf(lat, -lng) != c {
			t.Fatalf("lat %v: 180 and -180 in different cells", lat)
		}
	}
}

// TestGridContainsMargin: a cell widened by a margin holds what is within
// the margin of the cell and nothing farther, and a wider margin holds more.
func TestGridContainsMargin(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 1))
	for i := 0; i < 100000; i++ {
		lat, lng := randGridPoint(rng)
		if math.Abs(lat) > 85 {
			continue // cells there are not rectangles; the distance bounds below assume them
		}
		c := GridCellOf(lat, lng)
		clat, clng := c.Center()
		_, _, half := c.bounds()
		halfW := half * math.Cos(clat*math.Pi/180) * metresPerDegree
		halfH := GridRowHeightDeg / 2 * metresPerDegree
		// A point up to 2 km from the centre in a random direction.
		q := offsetPoint(clat, clng, rng.Float64()*2000, rng.Float64()*360)
		m := rng.Float64() * MaxHysteresisM
		in := c.Contains(q[0], q[1], m)
		d := DistanceM(q[0], q[1], clat, clng)
		if in && d > math.Hypot(halfW+m, halfH+m)+1 {
			t.Fatalf("cell %+v widened by %.0f m holds a point %.0f m from its centre", c, m, d)
		}
		if !in && d < math.Min(halfW, halfH)+m-1 {
			t.Fatalf("cell %+v widened by %.0f m misses a point %.0f m from its centre", c, m, d)
		}
		if in && !c.Contains(q[0], q[1], m+rng.Float64()*100) {
			t.Fatalf("a wider margin holds less")
		}
		if GridCellOf(q[0], q[1]) == c && !in {
			t.Fatalf("a point of the cell is outside it widened")
		}
	}
}

// offsetPoint moves dM metres from (lat, lng) along a bearing.
func offsetPoint(lat, lng, dM, bearingDeg float64) [2]float64 {
	r := dM / EarthRadiusM
	b := bearingDeg * math.Pi / 180
	p1, l1 := lat*math.Pi/180, lng*math.Pi/180
	p2 := math.Asin(math.Sin(p1)*math.Cos(r) + math.Cos(p1)*math.Sin(r)*math.Cos(b))
	l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(r)*math.Cos(p1), math.Cos(r)-math.Sin(p1)*math.Sin(p2))
	return [2]float64{p2 * 180 / math.Pi, math.Mod(l2*180/math.Pi+540, 360) - 180}
}

// TestNextGridPoint: the stored point is always a cell centre; the first
// one is the point's cell; later ones keep the old centre exactly when the
// new point is within the old cell widened by the margin, so walking along
// a boundary inside the margin never moves it.
func TestNextGridPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 50000; i++ {
		lat, lng := randGridPoint(rng)
		slat, slng, kept := NextGridPoint(0, 0, false, lat, lng, MaxHysteresisM)
		if kept || GridCellOf(lat, lng) != GridCellOf(slat, slng) {
			t.Fatalf("first point (%v, %v) stored as (%v, %v) kept=%v", lat, lng, slat, slng, kept)
		}
		q := offsetPoint(lat, lng, rng.Float64()*1500, rng.Float64()*360)
		m := RandomHysteresisM()
		if m < 0 || m > MaxHysteresisM {
			t.Fatalf("margin %v", m)
		}
		nlat, nlng, kept := NextGridPoint(slat, slng, true, q[0], q[1], m)
		old := GridCellOf(slat, slng)
		if kept != old.Contains(q[0], q[1], m) {
			t.Fatalf("kept=%v for (%v, %v) and cell %+v widened by %.0f", kept, q[0], q[1], old, m)
		}
		want := old
		if !kept {
			want = GridCellOf(q[0], q[1])
		}
		if wl, wg := want.Center(); nlat != wl || nlng != wg {
			t.Fatalf("stored (%v, %v), want the centre (%v, %v) of %+v", nlat, nlng, wl, wg, want)
		}
	}
	// Walking east along a row boundary, 100 m north of it, with the
	// largest margin: the stored point never changes while inside it.
	c := GridCellOf(48.1, 11.5)
	clat, clng := c.Center()
	_, maxLat, _ := c.bounds()
	slat, slng := clat, clng
	for k := 0; k < 50; k++ {
		lng := clng - 0.004 + float64(k)*0.0002
		lat := maxLat + 100/metresPerDegree
		nlat, nlng, kept := NextGridPoint(slat, slng, true, lat, lng, 150)
		if !kept || nlat != clat || nlng != clng {
			t.Fatalf("step %d: moved to (%v, %v)", k, nlat, nlng)
		}
	}
}

func FuzzGridCellOf(f *testing.F) {
	for _, p := range [][2]float64{{0, 0}, {90, 180}, {-90, -180}, {89.99999, 179.99999}, {-16.8, 179.95}, {48.1, -0.0000001}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, lat, lng float64) {
		if ValidatePoint(lat, lng) != nil {
			return
		}
		c := GridCellOf(lat, lng)
		if c.Row < 0 || c.Row >= GridRows || c.Col < 0 || c.Col >= GridColumns(c.Row) {
			t.Fatalf("(%v, %v): cell %+v out of range", lat, lng, c)
		}
		clat, clng := c.Center()
		if ValidatePoint(clat, clng) != nil || GridCellOf(clat, clng) != c || !c.Contains(lat, lng, 0) {
			t.Fatalf("(%v, %v): cell %+v, centre (%v, %v)", lat, lng, c, clat, clng)
		}
	})
}
