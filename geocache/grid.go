package geocache

import (
	"math"
	"math/rand/v2"
)

// The coarse location grid. Users' stored locations are the centres of its
// cells, so nothing finer than about a kilometre is ever kept or compared:
// no one can recover another user's position more precisely than a cell,
// however many distances they read.
//
// The grid has GridRows latitude rows of equal height (180°/GridRows =
// 0.009°, 1.0 km), counted from the south pole. Row r is cut into
// GridColumns(r) columns of equal width, counted eastwards from -180°: as
// many as fit while each is at least as wide as a row is high at the row's
// centre latitude, so cells are about 1 km × 1 km everywhere, a row has a
// whole number of columns (no seam at ±180°: longitude 180 is column 0's
// western edge, as -180 is) and the rows at the poles keep at least one
// column (three there: the polar cap's circumference is 3.1 km).
//
// Every function here is computed with the same float64 operations, in the
// same order, as the SQL of the PostGIS migration that snaps stored points
// (0006_coarse_locations.sql); a test compares them on every row.

// GridRows is the number of latitude rows of the coarse grid.
const GridRows = 20000

// GridRowHeightDeg is the height of a grid row in degrees of latitude.
const GridRowHeightDeg = 180.0 / GridRows

// MaxHysteresisM is the largest margin by which a user's current cell is
// widened before a new position counts as a move (see GridCell.Contains and
// NextGridPoint).
const MaxHysteresisM = 300

// metresPerDegree is the length of one degree of a great circle.
const metresPerDegree = EarthRadiusM * math.Pi / 180

// GridCell is one cell of the coarse grid.
type GridCell struct {
	Row int32 // 0 at the south pole, GridRows-1 at the north pole
	Col int32 // 0 at -180°, eastwards
}

// GridColumns returns the number of columns of grid row r (r in
// [0, GridRows)): floor(360·cos(centre latitude) / row height), at least 1.
func GridColumns(r int32) int32 {
	lat := gridRowCentre(r)
	n := math.Floor(360 * math.Cos(lat*math.Pi/180) / GridRowHeightDeg)
	return int32(max(1, n))
}

// gridRowCentre is the latitude of the centre of grid row r.
func gridRowCentre(r int32) float64 { return -90 + (float64(r)+0.5)*180/GridRows }

// GridCellOf returns the cell holding the point. lat must be in [-90, 90]
// and lng in [-180, 180] (ValidatePoint); latitude 90 belongs to the top
// row, longitude 180 to column 0 (the same meridian as -180).
func GridCellOf(lat, lng float64) GridCell {
	r := int32(math.Floor((lat + 90) * GridRows / 180))
	r = min(max(r, 0), GridRows-1)
	n := GridColumns(r)
	c := int32(math.Floor((lng + 180) * float64(n) / 360))
	if c >= n {
		c -= n
	}
	return GridCell{Row: r, Col: min(max(c, 0), n-1)}
}

// Center returns the centre of the cell, the point stored for everyone in
// it. GridCellOf(c.Center()) == c.
func (c GridCell) Center() (lat, lng float64) {
	n := float64(GridColumns(c.Row))
	return gridRowCentre(c.Row), -180 + (float64(c.Col)+0.5)*360/n
}

// bounds returns the cell's latitude range and its half width in degrees
// of longitude around Center.
func (c GridCell) bounds() (minLat, maxLat, halfWidthDeg float64) {
	minLat = -90 + float64(c.Row)*180/GridRows
	maxLat = -90 + float64(c.Row+1)*180/GridRows
	return minLat, maxLat, 180 / float64(GridColumns(c.Row))
}

// Contains reports whether the point lies within the cell widened by
// marginM metres on every side (marginM >= 0; 0: the cell itself, edges
// included). The widening is measured along the meridian for latitude and
// along the point's parallel for longitude, so near a pole, where a parallel
// is shorter than the margin, every longitude is within it.
func (c GridCell) Contains(lat, lng, marginM float64) bool {
	minLat, maxLat, half := c.bounds()
	// edgeSlackDeg (0.1 mm) absorbs rounding: a point GridCellOf puts in
	// the cell is within it.
	const edgeSlackDeg = 1e-9
	dLat := marginM/metresPerDegree + edgeSlackDeg
	if lat < minLat-dLat || lat > maxLat+dLat {
		return false
	}
	_, centre := c.Center()
	d := math.Abs(lng - centre)
	if d > 180 {
		d = 360 - d
	}
	if d <= half+edgeSlackDeg {
		return true
	}
	parallel := metresPerDegree * math.Cos(lat*math.Pi/180) // metres per degree of longitude here
	return (d-half)*parallel <= marginM
}

// SnapToGrid returns the centre of the cell holding the point.
func SnapToGrid(lat, lng float64) (float64, float64) { return GridCellOf(lat, lng).Center() }

// NextGridPoint returns the point to store for a user who reports (lat,
// lng): with no stored point (hasOld false), the centre of the point's cell;
// else, when the new point lies within the stored point's cell widened by
// marginM, the stored point itself (kept true), so a user walking along a
// cell boundary does not flip between cells and trace the boundary line;
// otherwise the centre of the new point's cell. old is a stored point, so a
// cell centre.
func NextGridPoint(oldLat, oldLng float64, hasOld bool, lat, lng, marginM float64) (sLat, sLng float64, kept bool) {
	if hasOld && GridCellOf(oldLat, oldLng).Contains(lat, lng, marginM) {
		return oldLat, oldLng, true
	}
	sLat, sLng = SnapToGrid(lat, lng)
	return sLat, sLng, false
}

// RandomHysteresisM draws a hysteresis margin uniformly from
// [0, MaxHysteresisM] metres: drawn afresh for every update, so where a
// user's stored cell changes reveals no fixed line.
func RandomHysteresisM() float64 { return rand.Float64() * MaxHysteresisM }
