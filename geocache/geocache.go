// Package geocache holds the geohash helpers Spark uses to bucket users by
// location: the cell of a point, the cells covering a circle and how many
// they are (correct across the ±180° meridian and near the poles), the
// coarse grid users' locations are snapped to, and a cell-candidate cache
// for matching that walks cells nearest first.
package geocache

import (
	"errors"
	"fmt"
	"math"

	"github.com/mmcloughlin/geohash"
)

// MaxPrecision is the longest geohash this package produces.
const MaxPrecision = 12

// ErrInvalidPoint reports a latitude or longitude out of range, NaN or infinite.
var ErrInvalidPoint = errors.New("geocache: invalid point")

// ValidatePoint checks that lat is in [-90, 90] and lng in [-180, 180] and both
// are finite numbers.
func ValidatePoint(lat, lng float64) error {
	if math.IsNaN(lat) || math.IsNaN(lng) || math.IsInf(lat, 0) || math.IsInf(lng, 0) {
		return fmt.Errorf("%w: coordinates must be finite numbers", ErrInvalidPoint)
	}
	if lat < -90 || lat > 90 {
		return fmt.Errorf("%w: lat %v outside [-90, 90]", ErrInvalidPoint, lat)
	}
	if lng < -180 || lng > 180 {
		return fmt.Errorf("%w: lng %v outside [-180, 180]", ErrInvalidPoint, lng)
	}
	return nil
}

// Cell returns the geohash of the point at the given precision (1..12 chars).
func Cell(lat, lng float64, precision uint) string {
	precision = clampPrecision(precision)
	return geohash.EncodeWithPrecision(lat, lng, precision)
}

// clampPrecision bounds a precision to 1..MaxPrecision.
func clampPrecision(p uint) uint {
	if p < 1 {
		return 1
	}
	if p > MaxPrecision {
		return MaxPrecision
	}
	return p
}

// CellSize returns the width (longitude) and height (latitude) in degrees of
// a geohash cell at the given precision.
func CellSize(precision uint) (widthDeg, heightDeg float64) {
	bits := 5 * clampPrecision(precision)
	lngBits := (bits + 1) / 2
	latBits := bits / 2
	return 360 / math.Exp2(float64(lngBits)), 180 / math.Exp2(float64(latBits))
}

// box is a latitude/longitude range; MinLng may exceed MaxLng when the range
// crosses the antimeridian.
type box struct {
	minLat, maxLat, minLng, maxLng float64
	allLng                         bool
}

// boundingBox returns the box that contains every point within radiusM of
// (lat, lng).
func boundingBox(lat, lng, radiusM float64) box {
	dLat := radiusM / EarthRadiusM * 180 / math.Pi
	b := box{minLat: lat - dLat, maxLat: lat + dLat}
	if b.minLat <= -90 || b.maxLat >= 90 {
		// The circle contains a pole: every longitude is in range.
		b.minLat = math.Max(b.minLat, -90)
		b.maxLat = math.Min(b.maxLat, 90)
		b.allLng = true
		return b
	}
	// Widest longitude span of a spherical cap (exact, not the cos(lat)
	// approximation): asin(sin(r)/cos(lat)).
	r := radiusM / EarthRadiusM
	x := math.Sin(r) / math.Cos(lat*math.Pi/180)
	if x >= 1 {
		b.allLng = true
		return b
	}
	dLng := math.Asin(x) * 180 / math.Pi
	b.minLng, b.maxLng = lng-dLng, lng+dLng
	if b.minLng < -180 {
		b.minLng += 360
	}
	if b.maxLng > 180 {
		b.maxLng -= 360
	}
	return b
}

// CellCount estimates how many cells CoveringCells returns for the circle at
// the given precision, without building them.
func CellCount(lat, lng, radiusM float64, precision uint) int {
	b := boundingBox(lat, lng, radiusM)
	w, h := CellSize(precision)
	rows := math.Floor((b.maxLat+90)/h) - math.Floor((b.minLat+90)/h) + 1
	var cols float64
	if b.allLng {
		cols = 360 / w
	} else if b.minLng <= b.maxLng {
		cols = math.Floor((b.maxLng+180)/w) - math.Floor((b.minLng+180)/w) + 1
	} else {
		cols = (math.Floor((180+180)/w) - math.Floor((b.minLng+180)/w) + 1) +
			(math.Floor((b.maxLng+180)/w) + 1)
	}
	n := rows * cols
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

// CoveringCells returns every geohash cell of the given precision that
// intersects the bounding box of the circle of radiusM metres around
// (lat, lng). The result is a superset of the cells the circle touches, so a
// search through them followed by an exact distance check misses nobody; it is
// correct across the ±180° meridian and around the poles.
func CoveringCells(lat, lng, radiusM float64, precision uint) []string {
	precision = clampPrecision(precision)
	b := boundingBox(lat, lng, radiusM)
	var spans [][2]float64
	switch {
	case b.allLng:
		spans = [][2]float64{{-180, 180}}
	case b.minLng <= b.maxLng:
		spans = [][2]float64{{b.minLng, b.maxLng}}
	default:
		spans = [][2]float64{{b.minLng, 180}, {-180, b.maxLng}}
	}
	w, h := CellSize(precision)
	seen := make(map[string]struct{})
	var out []string
	add := func(la, ln float64) {
		c := geohash.EncodeWithPrecision(math.Min(la, 90), math.Min(ln, 180), precision)
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	for _, sp := range spans {
		for la := b.minLat; ; la += h {
			if la > b.maxLat {
				la = b.maxLat
			}
			for ln := sp[0]; ; ln += w {
				if ln > sp[1] {
					ln = sp[1]
				}
				add(la, ln)
				if ln >= sp[1] {
					break
				}
			}
			if la >= b.maxLat {
				break
			}
		}
	}
	return out
}

// neighbors returns the up to 8 cells around cell, wrapping across the
// antimeridian and stopping at the poles.
func neighbors(cell string, precision uint) []string {
	b := geohash.BoundingBox(cell)
	w, h := CellSize(precision)
	clat, clng := (b.MinLat+b.MaxLat)/2, (b.MinLng+b.MaxLng)/2
	out := make([]string, 0, 8)
	for dy := -1; dy <= 1; dy++ {
		la := clat + float64(dy)*h
		if la <= -90 || la >= 90 {
			continue
		}
		for dx := -1; dx <= 1; dx++ {
			if dx == 0 && dy == 0 {
				continue
			}
			ln := clng + float64(dx)*w
			if ln >= 180 {
				ln -= 360
			} else if ln < -180 {
				ln += 360
			}
			out = append(out, geohash.EncodeWithPrecision(la, ln, precision))
		}
	}
	return out
}
