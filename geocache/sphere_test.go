package geocache

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmcloughlin/geohash"
)

func TestDistance(t *testing.T) {
	d := DistanceM(48.8566, 2.3522, 51.5072, -0.1276) // Paris - London
	if math.Abs(d-343_900) > 1500 {
		t.Fatalf("Paris-London = %.0f m", d)
	}
	d = DistanceM(-16.8, 179.95, -16.8, -179.95) // across the antimeridian
	if math.Abs(d-10_650) > 100 {
		t.Fatalf("across the antimeridian = %.0f m", d)
	}
}

// TestMinDistToBoxIsALowerBound: the best-first search is exact only if the
// distance to a cell never exceeds the distance to any point inside it.
func TestMinDistToBoxIsALowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		lat, lng := rng.Float64()*178-89, rng.Float64()*360-180
		if i%3 == 0 { // near the antimeridian
			lng = 179.5 + rng.Float64()
			if lng > 180 {
				lng -= 360
			}
		}
		p := uint(3 + rng.IntN(4))
		// A cell near the point, up to a few cells away.
		w, h := CellSize(p)
		clat := math.Max(-89.99, math.Min(89.99, lat+(rng.Float64()*8-4)*h))
		clng := math.Mod(lng+(rng.Float64()*8-4)*w+540, 360) - 180
		cell := Cell(clat, clng, p)
		box := geohash.BoundingBox(cell)
		b := [4]float64{box.MinLat, box.MaxLat, box.MinLng, box.MaxLng}
		md := minDistToBox(lat, lng, b[0], b[1], b[2], b[3])
		for k := 0; k < 60; k++ {
			qlat := b[0] + rng.Float64()*(b[1]-b[0])
			qlng := b[2] + rng.Float64()*(b[3]-b[2])
			switch k % 4 { // on the edges too, where the nearest point lies
			case 1:
				qlng = b[2]
			case 2:
				qlng = b[3]
			case 3:
				qlat = b[k%2]
			}
			if d := DistanceM(lat, lng, qlat, qlng); d < md-1e-6 {
				t.Fatalf("point (%v,%v) cell %s: min %.3f > distance %.3f to (%v,%v)", lat, lng, cell, md, d, qlat, qlng)
			}
		}
	}
}
