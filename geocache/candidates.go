package geocache

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/mmcloughlin/geohash"
)

// Candidate is what the cell-candidate cache holds per user: enough to filter
// and rank by distance without touching the database.
type Candidate struct {
	ID     int64
	Lat    float64
	Lng    float64
	Age    int16
	Gender string
}

// Ranked is a candidate with its distance from the query point.
type Ranked struct {
	Candidate
	DistanceM float64
}

// Loader fetches the active users whose location lies in a geohash cell.
type Loader func(ctx context.Context, cell string) ([]Candidate, error)

// CandidateCacheConfig configures NewCandidateCache.
type CandidateCacheConfig struct {
	Loader       Loader
	MaxEntries   int           // cells kept (LRU); default 65536
	TTL          time.Duration // entry lifetime; default 10s. Bounds staleness across processes.
	MinPrecision uint          // coarsest cell used; default 3
	MaxPrecision uint          // finest cell used (<= the stored cell precision); default 5
	MaxCells     int           // most cells a circle may cover at the chosen precision; default 4096
	Now          func() time.Time
}

type entry struct {
	cell    string
	cands   []Candidate
	vecs    []vec3 // unit vectors of cands, for cheap chord distances
	expires time.Time
	elem    *list.Element
}

type call struct {
	done  chan struct{}
	cands []Candidate
	err   error
	stale bool // invalidated while loading: do not store
}

// CandidateCache caches, per geohash cell, the active users located in it.
// Entries are invalidated when a user moves in or out of a cell (Invalidate /
// Moved) and expire after TTL. It is safe for concurrent use; concurrent
// misses on one cell share one load.
type CandidateCache struct {
	cfg      CandidateCacheConfig
	mu       sync.Mutex
	entries  map[string]*entry
	lru      *list.List
	inflight map[string]*call
	hits     uint64
	misses   uint64
}

// ErrRadiusTooLarge means the circle needs cells coarser than MinPrecision;
// callers should fall back to an exact query.
var ErrRadiusTooLarge = errors.New("geocache: radius too large for the candidate cache")

// NewCandidateCache returns a cache; cfg.Loader is required.
func NewCandidateCache(cfg CandidateCacheConfig) (*CandidateCache, error) {
	if cfg.Loader == nil {
		return nil, errors.New("geocache: candidate cache needs a loader")
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1 << 16
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.MinPrecision == 0 {
		cfg.MinPrecision = 3
	}
	if cfg.MaxPrecision == 0 {
		cfg.MaxPrecision = 5
	}
	if cfg.MaxPrecision < cfg.MinPrecision {
		return nil, fmt.Errorf("geocache: max precision %d below min precision %d", cfg.MaxPrecision, cfg.MinPrecision)
	}
	if cfg.MaxCells <= 0 {
		cfg.MaxCells = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CandidateCache{cfg: cfg, entries: map[string]*entry{}, lru: list.New(),
		inflight: map[string]*call{}}, nil
}

// Stats returns hit and miss counts.
func (c *CandidateCache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// Get returns the candidates of a cell. On a miss it loads the cell's parent
// (one precision coarser) in one loader call and stores all 32 children,
// empty ones included, so sparse areas cost one query per 32 cells.
func (c *CandidateCache) Get(ctx context.Context, cell string) ([]Candidate, error) {
	cands, _, err := c.get(ctx, cell)
	return cands, err
}

// get is Get with the candidates' unit vectors (computed when absent).
func (c *CandidateCache) get(ctx context.Context, cell string) ([]Candidate, []vec3, error) {
	c.mu.Lock()
	if e, ok := c.entries[cell]; ok && c.cfg.Now().Before(e.expires) {
		c.lru.MoveToFront(e.elem)
		c.hits++
		c.mu.Unlock()
		return e.cands, e.vecs, nil
	}
	c.misses++
	key := cell
	if len(cell) > 1 {
		key = cell[:len(cell)-1]
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			if cl.err != nil {
				return nil, nil, cl.err
			}
			return withVecs(withPrefix(cl.cands, cell))
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("geocache: waiting for cell %s: %w", cell, ctx.Err())
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()

	cl.cands, cl.err = c.cfg.Loader(ctx, key)
	if cl.err != nil {
		cl.err = fmt.Errorf("geocache: load cell %s: %w", key, cl.err)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	if cl.err == nil && !cl.stale {
		if key == cell {
			c.storeLocked(cell, cl.cands)
		} else {
			children := make(map[string][]Candidate, 32)
			for _, cd := range cl.cands {
				k := Cell(cd.Lat, cd.Lng, uint(len(cell)))
				children[k] = append(children[k], cd)
			}
			for i := 0; i < len(base32); i++ {
				k := key + base32[i:i+1]
				c.storeLocked(k, children[k])
			}
		}
	}
	c.mu.Unlock()
	close(cl.done)
	if cl.err != nil {
		return nil, nil, cl.err
	}
	return withVecs(withPrefix(cl.cands, cell))
}

func withVecs(cands []Candidate) ([]Candidate, []vec3, error) {
	vecs := make([]vec3, len(cands))
	for i, cd := range cands {
		vecs[i] = unitVec(cd.Lat, cd.Lng)
	}
	return cands, vecs, nil
}

// vec3 is a point on the unit sphere.
type vec3 [3]float64

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

// withPrefix keeps the candidates located in cell.
func withPrefix(cands []Candidate, cell string) []Candidate {
	var out []Candidate
	for _, cd := range cands {
		if Cell(cd.Lat, cd.Lng, uint(len(cell))) == cell {
			out = append(out, cd)
		}
	}
	return out
}

func (c *CandidateCache) storeLocked(cell string, cands []Candidate) {
	if e, ok := c.entries[cell]; ok {
		c.lru.Remove(e.elem)
		delete(c.entries, cell)
	}
	vecs := make([]vec3, len(cands))
	for i, cd := range cands {
		vecs[i] = unitVec(cd.Lat, cd.Lng)
	}
	e := &entry{cell: cell, cands: cands, vecs: vecs, expires: c.cfg.Now().Add(c.cfg.TTL)}
	e.elem = c.lru.PushFront(e)
	c.entries[cell] = e
	for c.lru.Len() > c.cfg.MaxEntries {
		old := c.lru.Back().Value.(*entry)
		c.lru.Remove(old.elem)
		delete(c.entries, old.cell)
	}
}

// Invalidate drops the given cells, every finer cached cell inside them (up
// to MaxPrecision) and every coarser cell containing them (down to
// MinPrecision). A load in flight for one of them is not stored.
func (c *CandidateCache) Invalidate(cells ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cell := range cells {
		if cell == "" {
			continue
		}
		for p := len(cell); p >= 1 && uint(p) >= c.cfg.MinPrecision; p-- {
			if uint(p) <= c.cfg.MaxPrecision {
				c.dropLocked(cell[:p])
			}
			c.markStaleLocked(cell[:p])
		}
		c.dropDescendantsLocked(cell)
	}
}

func (c *CandidateCache) markStaleLocked(k string) {
	if cl, ok := c.inflight[k]; ok {
		cl.stale = true
	}
}

func (c *CandidateCache) dropLocked(k string) {
	if e, ok := c.entries[k]; ok {
		c.lru.Remove(e.elem)
		delete(c.entries, k)
	}
}

func (c *CandidateCache) dropDescendantsLocked(cell string) {
	if uint(len(cell)) >= c.cfg.MaxPrecision {
		return
	}
	for i := 0; i < len(base32); i++ {
		k := cell + base32[i:i+1]
		c.dropLocked(k)
		c.markStaleLocked(k)
		c.dropDescendantsLocked(k)
	}
}

// Moved invalidates the cells a user left and entered (either may be "").
func (c *CandidateCache) Moved(oldCell, newCell string) {
	var cells []string
	for _, x := range []string{oldCell, newCell} {
		if x != "" {
			cells = append(cells, x)
		}
	}
	c.Invalidate(cells...)
}

// Precision returns the cell precision the cache uses for a circle, or
// ErrRadiusTooLarge when covering it would take more than MaxCells cells at
// MinPrecision.
func (c *CandidateCache) Precision(lat, lng, radiusM float64) (uint, error) {
	p := c.cfg.MaxPrecision
	for ; p >= c.cfg.MinPrecision; p-- {
		if CellCount(lat, lng, radiusM, p) <= c.cfg.MaxCells {
			return p, nil
		}
	}
	return 0, ErrRadiusTooLarge
}

// Near returns every cached candidate within radiusM of (lat, lng) that keep
// accepts, nearest first (ties by id).
func (c *CandidateCache) Near(ctx context.Context, lat, lng, radiusM float64, keep func(Candidate) bool) ([]Ranked, error) {
	it, err := c.Nearest(lat, lng, radiusM, keep)
	if err != nil {
		return nil, err
	}
	var out []Ranked
	for {
		r, ok, err := it.Next(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, r)
	}
}

// Nearest returns an iterator over the candidates within radiusM of
// (lat, lng) that keep accepts, in increasing distance (ties by id). It is a
// best-first search over geohash cells: a cell is loaded only when no
// unreturned candidate can be nearer than the cell's closest point, so a
// caller that stops after the first n candidates touches the few cells around
// the point even in a dense city.
func (c *CandidateCache) Nearest(lat, lng, radiusM float64, keep func(Candidate) bool) (*Iterator, error) {
	p, err := c.Precision(lat, lng, radiusM)
	if err != nil {
		return nil, err
	}
	it := &Iterator{c: c, lat: lat, lng: lng, radius: radiusM, keep: keep, precision: p, visited: map[string]struct{}{},
		q: unitVec(lat, lng)}
	half := math.Min(radiusM/EarthRadiusM, math.Pi) / 2
	it.maxChord2 = 4 * math.Sin(half) * math.Sin(half)
	it.pushCell(Cell(lat, lng, p))
	return it, nil
}

// Iterator yields candidates nearest first; see CandidateCache.Nearest.
type Iterator struct {
	c         *CandidateCache
	lat, lng  float64
	radius    float64
	keep      func(Candidate) bool
	precision uint
	visited   map[string]struct{}
	pq        itemHeap
	cellsRead int
	q         vec3
	maxChord2 float64
}

// CellsRead reports how many cells the iterator has loaded so far.
func (it *Iterator) CellsRead() int { return it.cellsRead }

type item struct {
	dist float64
	cell string   // non-empty: a cell still to expand
	list []Ranked // else: a cell's sorted candidates from idx on
	idx  int
}

func (a *item) less(b *item) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if (a.cell != "") != (b.cell != "") {
		return a.cell != "" // expand a cell before returning a candidate at the same distance
	}
	if a.cell != "" {
		return a.cell < b.cell
	}
	return a.list[a.idx].ID < b.list[b.idx].ID
}

type itemHeap []*item

func (h *itemHeap) push(x *item) {
	*h = append(*h, x)
	i := len(*h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !(*h)[i].less((*h)[p]) {
			break
		}
		(*h)[i], (*h)[p] = (*h)[p], (*h)[i]
		i = p
	}
}

func (h *itemHeap) pop() *item {
	old := *h
	n := len(old) - 1
	top := old[0]
	old[0] = old[n]
	*h = old[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && (*h)[l].less((*h)[m]) {
			m = l
		}
		if r < n && (*h)[r].less((*h)[m]) {
			m = r
		}
		if m == i {
			break
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
	return top
}

func (it *Iterator) pushCell(cell string) {
	if _, seen := it.visited[cell]; seen {
		return
	}
	it.visited[cell] = struct{}{}
	b := geohash.BoundingBox(cell)
	d := minDistToBox(it.lat, it.lng, b.MinLat, b.MaxLat, b.MinLng, b.MaxLng)
	if d > it.radius {
		return
	}
	it.pq.push(&item{dist: d, cell: cell})
}

// Next returns the next nearest candidate; ok is false when there are no more.
func (it *Iterator) Next(ctx context.Context) (r Ranked, ok bool, err error) {
	for len(it.pq) > 0 {
		top := it.pq.pop()
		if top.cell == "" {
			r = top.list[top.idx]
			if top.idx+1 < len(top.list) {
				top.idx++
				top.dist = top.list[top.idx].DistanceM
				it.pq.push(top)
			}
			return r, true, nil
		}
		cands, vecs, err := it.c.get(ctx, top.cell)
		if err != nil {
			return Ranked{}, false, err
		}
		it.cellsRead++
		type keyed struct {
			c2 float64
			i  int
		}
		var ks []keyed
		for i := range cands {
			c2 := chord2(it.q, vecs[i])
			if c2 > it.maxChord2 || (it.keep != nil && !it.keep(cands[i])) {
				continue
			}
			ks = append(ks, keyed{c2, i})
		}
		if len(ks) > 0 {
			slices.SortFunc(ks, func(a, b keyed) int {
				if a.c2 != b.c2 {
					return cmp.Compare(a.c2, b.c2)
				}
				return cmp.Compare(cands[a.i].ID, cands[b.i].ID)
			})
			list := make([]Ranked, len(ks))
			for j, k := range ks {
				list[j] = Ranked{Candidate: cands[k.i], DistanceM: chordToMeters(k.c2)}
			}
			it.pq.push(&item{dist: list[0].DistanceM, list: list})
		}
		for _, n := range neighbors(top.cell, it.precision) {
			it.pushCell(n)
		}
	}
	return Ranked{}, false, nil
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
	// Guard against the endpoints being nearer when the foot formula is off
	// (beyond a quarter turn of longitude).
	return math.Min(d, math.Min(DistanceM(lat, lng, minLat, edge), DistanceM(lat, lng, maxLat, edge)))
}
