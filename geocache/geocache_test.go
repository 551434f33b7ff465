package geocache

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestValidatePoint(t *testing.T) {
	good := [][2]float64{{0, 0}, {90, 180}, {-90, -180}, {-16.8, 179.99}}
	for _, p := range good {
		if err := ValidatePoint(p[0], p[1]); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	bad := [][2]float64{{90.0001, 0}, {0, 180.01}, {-91, 0}, {math.NaN(), 0}, {0, math.Inf(-1)}}
	for _, p := range bad {
		if err := ValidatePoint(p[0], p[1]); !errors.Is(err, ErrInvalidPoint) {
			t.Errorf("%v: got %v", p, err)
		}
	}
}

func TestCell(t *testing.T) {
	if c := Cell(57.64911, 10.40744, 11); c != "u4pruydqqvj" { // the classic example from geohash.org
		t.Fatalf("Cell = %q", c)
	}
	if c := Cell(57.64911, 10.40744, 0); len(c) != 1 {
		t.Fatalf("precision clamp low: %q", c)
	}
	if c := Cell(57.64911, 10.40744, 40); len(c) != MaxPrecision {
		t.Fatalf("precision clamp high: %q", c)
	}
}

func TestCellSize(t *testing.T) {
	w, h := CellSize(5)
	if math.Abs(w-0.0439453125) > 1e-12 || math.Abs(h-0.0439453125) > 1e-12 {
		t.Fatalf("p5 = %v x %v", w, h)
	}
	w, h = CellSize(1)
	if w != 45 || h != 45 {
		t.Fatalf("p1 = %v x %v", w, h)
	}
}

// TestCoveringCellsComplete: every point within the radius lies in one of
// the covering cells, for random centres including the antimeridian and the
// poles.
func TestCoveringCellsComplete(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	centres := [][2]float64{{-16.8, 179.99}, {-16.8, -179.99}, {89.95, 10}, {-89.9, -100}, {0, 0}, {35.67, 139.65}}
	for i := 0; i < 200; i++ {
		var lat, lng float64
		if i < len(centres) {
			lat, lng = centres[i][0], centres[i][1]
		} else {
			lat, lng = rng.Float64()*178-89, rng.Float64()*360-180
		}
		radius := 100 + rng.Float64()*80_000
		p := finestPrecision(lat, lng, radius, 64)
		cells := CoveringCells(lat, lng, radius, p)
		if len(cells) > 64 {
			t.Fatalf("%d cells > 64 at precision %d", len(cells), p)
		}
		if n := CellCount(lat, lng, radius, p); n < len(cells) {
			t.Fatalf("CellCount %d < actual %d", n, len(cells))
		}
		set := map[string]bool{}
		for _, c := range cells {
			set[c] = true
		}
		for k := 0; k < 200; k++ {
			// Random point inside the circle.
			r := radius * math.Sqrt(rng.Float64()) / EarthRadiusM
			b := rng.Float64() * 2 * math.Pi
			p1, l1 := lat*math.Pi/180, lng*math.Pi/180
			p2 := math.Asin(math.Sin(p1)*math.Cos(r) + math.Cos(p1)*math.Sin(r)*math.Cos(b))
			l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(r)*math.Cos(p1), math.Cos(r)-math.Sin(p1)*math.Sin(p2))
			plat, plng := p2*180/math.Pi, math.Mod(l2*180/math.Pi+540, 360)-180
			if DistanceM(lat, lng, plat, plng) > radius {
				continue
			}
			if c := Cell(plat, plng, p); !set[c] {
				t.Fatalf("centre (%v,%v) r=%.0f p=%d: point (%v,%v) in cell %s not covered", lat, lng, radius, p, plat, plng, c)
			}
		}
	}
}

// finestPrecision returns the longest precision whose covering of a circle
// of radiusM around (lat, lng) needs at most maxCells cells (at least 1).
func finestPrecision(lat, lng, radiusM float64, maxCells int) uint {
	for p := uint(MaxPrecision); p > 1; p-- {
		if CellCount(lat, lng, radiusM, p) <= maxCells {
			return p
		}
	}
	return 1
}
