package geocache

import (
	"context"
	"math"

	"github.com/mmcloughlin/geohash"
)

// Nearest returns an iterator over the candidates within radiusM of
// (lat, lng) that keep accepts, in increasing distance (ties by id). It is a
// best-first search over geohash cells: a cell is loaded only when no
// unreturned candidate can be nearer than the cell's closest point, so a
// caller that stops after the first n candidates touches the few cells around
// the point even in a dense city.
func (c *CandidateCache) Nearest(lat, lng, radiusM float64, keep func(Candidate) bool) (*Iterator, error) {
	p, err := c.precision(lat, lng, radiusM)
	if err != nil {
		return nil, err
	}
	it := &Iterator{c: c, lat: lat, lng: lng, radius: radiusM, keep: keep, visited: make(map[string]struct{}, 64),
		q: unitVec(lat, lng)}
	half := math.Min(radiusM/EarthRadiusM, math.Pi) / 2
	it.maxChord2 = 4 * math.Sin(half) * math.Sin(half)
	start := Cell(lat, lng, p)
	it.pushCell(start, geohash.BoundingBox(start))
	return it, nil
}

// NearestMatching is Nearest with a Filter in place of a keep function: the
// scan of a cell tests the filter on its packed points directly, several
// times faster than materialising each candidate for a call.
func (c *CandidateCache) NearestMatching(lat, lng, radiusM float64, f Filter) (*Iterator, error) {
	it, err := c.Nearest(lat, lng, radiusM, nil)
	if err != nil {
		return nil, err
	}
	it.filter = &f
	return it, nil
}

// Iterator yields candidates nearest first; see CandidateCache.Nearest.
type Iterator struct {
	c         *CandidateCache
	lat, lng  float64
	radius    float64
	q         vec3    // the query point
	maxChord2 float64 // radius as a squared chord
	keep      func(Candidate) bool
	filter    *Filter   // instead of keep (NearestMatching)
	bound     []float64 // with filter.Limit: see Filter.scan
	visited   map[string]struct{}
	pq        itemHeap
	slab      []item // backs the items of pq (newItem)
	cellsRead int    // cells expanded so far
}

// item is an entry of the iterator's queue, ordered by dist: a cell still
// to expand, dist the distance to its nearest point, or a cell's remaining
// candidates, dist the distance of the nearest.
type item struct {
	dist   float64
	expand string // non-empty: a cell still to expand
	// else: a cell's remaining candidates, keys a min-heap of them by
	// (squared chord, id), so a caller that stops early never sorts a cell;
	// keys index the points of cell (shared, read only).
	cell *decodedCell
	keys []ckey
}

// newItem returns a zero item from the iterator's slab: items are allocated
// 32 at a time, and a full chunk is never appended to, so pointers into it
// stay valid.
func (it *Iterator) newItem() *item {
	if len(it.slab) == cap(it.slab) {
		it.slab = make([]item, 0, 32)
	}
	it.slab = append(it.slab, item{})
	return &it.slab[len(it.slab)-1]
}

// pushCell queues a cell, whose bounding box is b, to be expanded, unless it
// was queued before or lies beyond the radius.
func (it *Iterator) pushCell(cell string, b geohash.Box) {
	if _, seen := it.visited[cell]; seen {
		return
	}
	it.visited[cell] = struct{}{}
	d := minDistToBox(it.lat, it.lng, b.MinLat, b.MaxLat, b.MinLng, b.MaxLng)
	if d > it.radius {
		return
	}
	x := it.newItem()
	x.dist, x.expand = d, cell
	it.pq.push(x)
}

// Next returns the next nearest candidate; ok is false when there are no more.
func (it *Iterator) Next(ctx context.Context) (r Ranked, ok bool, err error) {
	for len(it.pq) > 0 {
		top := it.pq.pop()
		if top.expand == "" {
			r = Ranked{Candidate: top.cell.candidate(top.keys[0].i), DistanceM: top.dist}
			if top.keys = popKey(top.keys); len(top.keys) > 0 {
				top.dist = chordToMeters(top.keys[0].c2)
				it.pq.push(top)
			}
			return r, true, nil
		}
		if err := it.expand(ctx, top.expand); err != nil {
			return Ranked{}, false, err
		}
	}
	return Ranked{}, false, nil
}

// expand reads a cell, queues its candidates within the radius that the
// filter (or keep) accepts, and queues the cells around it.
func (it *Iterator) expand(ctx context.Context, cell string) error {
	d, err := it.c.cell(ctx, cell)
	if err != nil {
		return err
	}
	it.cellsRead++
	var keys []ckey
	if it.filter != nil {
		keys = it.filter.scan(d, it.q, it.maxChord2, nil, &it.bound)
	} else {
		keys = scanKeep(d, it.q, it.maxChord2, it.keep)
	}
	if len(keys) > 0 {
		heapifyKeys(keys)
		x := it.newItem()
		x.dist, x.cell, x.keys = chordToMeters(keys[0].c2), d, keys
		it.pq.push(x)
	}
	nbrs, boxes := d.neighbors()
	for i, n := range nbrs {
		it.pushCell(n, boxes[i])
	}
	return nil
}
