package geocache

import "math"

// Geometry on the sphere PostGIS uses: great-circle distances, and unit
// vectors whose squared chords rank points by distance without
// trigonometry.

// EarthRadiusM is the mean Earth radius in metres, the sphere PostGIS uses for
// geography distances computed on a sphere.
const EarthRadiusM = 6371008.7714

// DistanceM is the great-circle (haversine) distance in metres between two
// points on a sphere of radius EarthRadiusM.
func DistanceM(lat1, lng1, lat2, lng2 float64) float64 {
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp := p2 - p1
	dl := (lng2 - lng1) * math.Pi / 180
	s := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	if s > 1 {
		s = 1
	}
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(s))
}

// vec3 is a point on the unit sphere.
type vec3 [3]float64

// unitVec is the unit vector of a point given in degrees.
func unitVec(lat, lng float64) vec3 {
	p, l := lat*math.Pi/180, lng*math.Pi/180
	cp := math.Cos(p)
	return vec3{cp * math.Cos(l), cp * math.Sin(l), math.Sin(p)}
}

// chord2 is the squared straight-line distance between unit vectors; it is
// monotone in the great-circle distance, so it ranks without trigonometry.
func chord2(a, b vec3) float64 {
	dx, dy, dz := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return dx*dx + dy*dy + dz*dz
}

// chordToMeters converts a squared chord to the great-circle distance.
func chordToMeters(c2 float64) float64 {
	h := math.Sqrt(c2) / 2
	if h > 1 {
		h = 1
	}
	return 2 * EarthRadiusM * math.Asin(h)
}

// minDistToBox is the great-circle distance from a point to the nearest
// point of a latitude/longitude box (0 inside). When the point's longitude is
// outside the box, the nearest point lies on the nearer meridian edge: the
// foot of the perpendicular on that meridian, clamped to the edge.
func minDistToBox(lat, lng, minLat, maxLat, minLng, maxLng float64) float64 {
	dl := func(a, b float64) float64 { // signed shortest longitude difference a-b
		d := math.Mod(a-b+540, 360) - 180
		return d
	}
	inLng := dl(lng, minLng) >= 0 && dl(maxLng, lng) >= 0
	if inLng {
		switch {
		case lat < minLat:
			return DistanceM(lat, lng, minLat, lng)
		case lat > maxLat:
			return DistanceM(lat, lng, maxLat, lng)
		}
		return 0
	}
	edge := minLng
	if math.Abs(dl(lng, maxLng)) < math.Abs(dl(lng, minLng)) {
		edge = maxLng
	}
	dLng := math.Abs(dl(lng, edge)) * math.Pi / 180
	var foot float64
	if dLng < math.Pi/2 {
		foot = math.Atan(math.Tan(lat*math.Pi/180)/math.Cos(dLng)) * 180 / math.Pi
	} else {
		foot = math.Copysign(90, lat)
	}
	foot = math.Max(minLat, math.Min(maxLat, foot))
	d := DistanceM(lat, lng, foot, edge)
	if dLng < math.Pi/2 {
		// Along the edge's meridian the distance grows monotonically away
		// from the foot (for a quarter turn either way), so the clamped foot
		// is the nearest point of the edge.
		return d
	}
	// Beyond a quarter turn of longitude the foot formula is off: take the
	// nearer endpoint too.
	return math.Min(d, math.Min(DistanceM(lat, lng, minLat, edge), DistanceM(lat, lng, maxLat, edge)))
}
