package geocache

import (
	"sort"

	"github.com/mmcloughlin/geohash"
)

func geohashBox(cell string) [4]float64 {
	b := geohash.BoundingBox(cell)
	return [4]float64{b.MinLat, b.MaxLat, b.MinLng, b.MaxLng}
}

func sortRanked(r []Ranked) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].DistanceM != r[j].DistanceM {
			return r[i].DistanceM < r[j].DistanceM
		}
		return r[i].ID < r[j].ID
	})
}
