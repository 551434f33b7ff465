package geocache

import (
	"encoding/binary"
	"slices"
	"sync/atomic"

	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/mmcloughlin/geohash"

	"github.com/spark-edge/spark/tiered"
)

// Candidate is what the cell-candidate cache holds per user: enough to filter
// and rank by distance without touching the database.
type Candidate struct {
	ID     int64
	Lat    float64
	Lng    float64
	Age    int16
	Gender string
	// Extra is an opaque payload the loader may attach (for example the
	// profile fields a caller returns without asking its database again);
	// the cache stores it with the candidate and returns it unchanged. It
	// must be treated as read-only.
	Extra []byte
}

// Ranked is a candidate with its distance from the query point.
type Ranked struct {
	Candidate
	DistanceM float64
}

// Loader fetches the active users whose location lies in a geohash cell.
type Loader func(ctx context.Context, cell string) ([]Candidate, error)

// BoundedLoader fetches at most limit of the active users located in a
// geohash cell, in ascending order of their finer cells (so every child
// cell in the result but the last is there whole), and reports whether the
// result holds all of them.
type BoundedLoader func(ctx context.Context, cell string, limit int) (cands []Candidate, complete bool, err error)

// CandidateCacheConfig configures NewCandidateCache.
type CandidateCacheConfig struct {
	Loader Loader
	// BoundedLoader, when set, reads the parent on a cold miss instead of
	// Loader, at most ParentRows users: a dense parent is not read whole,
	// only its first children (stored); a wanted cell beyond them is loaded
	// alone, and so are its siblings later.
	BoundedLoader BoundedLoader
	// ParentRows bounds a BoundedLoader's read; default 1024.
	ParentRows int
	// Store holds the cells. Origin instances whose stores share a Redis
	// (tiered.Options.Redis) share the cells and their invalidation. Nil:
	// an in-process store of MaxBytes.
	Store *tiered.Cache
	// MaxBytes sizes the in-process store made when Store is nil; default
	// 64 MiB.
	MaxBytes int64
	// DecodedBytes bounds the cells kept decoded in process besides the
	// store: a walk reads them in place instead of copying each cell out of
	// the store and parsing it. Default MaxBytes/2; negative: none.
	DecodedBytes int64
	// Grace is how long past its TTL a decoded cell that no purge touched
	// is still served while one background load refreshes it, so expiry
	// never puts a load on a request's path (purges still apply at once;
	// only changes that bypass Invalidate can be seen up to TTL+Grace
	// late). Default TTL; negative: none.
	Grace time.Duration
	// Refreshes bounds the background refresh loads running at once;
	// default 2. A refresh that finds them all busy is tried again by a
	// later read.
	Refreshes    int
	TTL          time.Duration // entry lifetime; default 10s
	MinPrecision uint          // coarsest cell used; default 3
	MaxPrecision uint          // finest cell used (<= the stored cell precision); default 5
	MaxCells     int           // most cells a circle may cover at the chosen precision; default 4096
	// Now is the clock of the in-process store; default time.Now.
	Now func() time.Time
}

// call is one load, shared by the misses that wait for it.
type call struct {
	split   bool // the cell's 32 children were loaded (and stored), not the cell itself
	done    chan struct{}
	cands   []Candidate
	expires time.Time
	err     error
	// upTo, when set, means a split load read only the children before
	// it: upTo and the children after it were not read (whole).
	upTo string
}

// covers reports whether the load read all of cell.
func (cl *call) covers(cell string) bool { return cl.upTo == "" || cell < cl.upTo }

// of returns cell's candidates from the load.
func (cl *call) of(cell string) []Candidate {
	if !cl.split {
		return cl.cands
	}
	return withPrefix(cl.cands, cell)
}

// CandidateCache caches, per geohash cell, the active users located in it,
// in a tiered store. Entries are invalidated when a user moves in or out of
// a cell (Invalidate / Moved) — a load in flight then is not stored — and
// expire after TTL. It is safe for concurrent use; concurrent misses on one
// cell share one load.
type CandidateCache struct {
	cfg      CandidateCacheConfig
	store    *tiered.Cache
	own      bool // store made here, closed by Close
	mu       sync.Mutex
	inflight map[string]*call
	decoded  decodedCells
	now      func() time.Time
	// Background refreshes: sem bounds them, bg tracks them for Close,
	// bgCtx ends them.
	sem      chan struct{}
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	hits     atomic.Uint64
	misses   atomic.Uint64
}

// refreshTimeout bounds a background refresh load.
const refreshTimeout = 30 * time.Second

// ErrRadiusTooLarge means the circle needs cells coarser than MinPrecision;
// callers should fall back to an exact query.
var ErrRadiusTooLarge = errors.New("geocache: radius too large for the candidate cache")

// NewCandidateCache returns a cache; cfg.Loader is required.
func NewCandidateCache(cfg CandidateCacheConfig) (*CandidateCache, error) {
	if cfg.Loader == nil {
		return nil, errors.New("geocache: candidate cache needs a loader")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
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
	if cfg.ParentRows <= 0 {
		cfg.ParentRows = 1024
	}
	if cfg.MaxPrecision < cfg.MinPrecision {
		return nil, fmt.Errorf("geocache: max precision %d below min precision %d", cfg.MaxPrecision, cfg.MinPrecision)
	}
	if cfg.MaxCells <= 0 {
		cfg.MaxCells = 4096
	}
	if cfg.DecodedBytes == 0 {
		cfg.DecodedBytes = cfg.MaxBytes / 2
	}
	if cfg.Grace == 0 {
		cfg.Grace = cfg.TTL
	}
	if cfg.Refreshes <= 0 {
		cfg.Refreshes = 2
	}
	c := &CandidateCache{cfg: cfg, store: cfg.Store, inflight: map[string]*call{}, now: cfg.Now,
		decoded: decodedCells{m: map[string]*decodedCell{}, max: cfg.DecodedBytes},
		sem:     make(chan struct{}, cfg.Refreshes)}
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	if c.now == nil {
		c.now = time.Now
	}
	if c.store == nil {
		st, err := tiered.New(context.Background(), tiered.Options{
			Capacity: cfg.MaxBytes, MaxEntrySize: int(cfg.MaxBytes / 4), MaxLifetime: cfg.TTL, Now: cfg.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("geocache: candidate store: %w", err)
		}
		c.store, c.own = st, true
	}
	return c, nil
}

// Close stops background refreshes and releases the store the cache made
// itself (not a cfg.Store, which must be closed after the cache).
func (c *CandidateCache) Close() error {
	c.bgCancel()
	c.bg.Wait()
	if c.own {
		return c.store.Close()
	}
	return nil
}

// ResetStats sets the hit and miss counts to zero.
func (c *CandidateCache) ResetStats() {
	c.hits.Store(0)
	c.misses.Store(0)
}

// Stats returns hit and miss counts.
func (c *CandidateCache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}

const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// Store keys and tags: a cell's entry is tagged with every prefix of the
// cell, so invalidating a cell purges it and all finer cells inside it.
func cellKey(cell string) string { return "geocell:" + cell }
func cellTag(cell string) string { return "geocell<" + cell }

// loadedKey marks a cell whose 32 children were stored by one load: a child
// missing while the mark lives was invalidated (or evicted) on its own, and
// is loaded alone rather than with its 31 cached siblings. The mark carries
// the cell's tags, so invalidating the cell or a coarser one drops it.
func loadedKey(cell string) string { return "geoload:" + cell }

func cellTags(cell string) []string {
	tags := make([]string, 0, len(cell))
	for p := 1; p <= len(cell); p++ {
		tags = append(tags, cellTag(cell[:p]))
	}
	return tags
}

// Get returns the candidates of a cell. On a miss it loads the cell's parent
// (one precision coarser) in one loader call and stores all 32 children,
// empty ones included, so sparse areas cost one query per 32 cells; a cell
// invalidated alone while its siblings are still stored is loaded alone.
func (c *CandidateCache) Get(ctx context.Context, cell string) ([]Candidate, error) {
	d, err := c.cell(ctx, cell)
	if err != nil {
		return nil, err
	}
	out := make([]Candidate, len(d.pts))
	for i := range out {
		out[i] = d.candidate(i)
	}
	return out, nil
}

// cell returns a cell decoded: the decoded copy kept in process while no
// purge touched it since it was read and it has not expired, else the
// store's entry (or a load) decoded and kept. The result is shared: read
// only.
func (c *CandidateCache) cell(ctx context.Context, cell string) (*decodedCell, error) {
	if d := c.decoded.get(cell); d != nil {
		now := c.now().UnixNano()
		if now < d.expires+int64(max(c.cfg.Grace, 0)) && c.unpurged(d) {
			c.hits.Add(1)
			if now >= d.expires {
				c.refresh(cell, d)
			}
			return d, nil
		}
		c.decoded.drop(cell, d)
	}
	return c.decode(ctx, cell)
}

// decode reads a cell from the store (or loads it) and keeps it decoded.
func (c *CandidateCache) decode(ctx context.Context, cell string) (*decodedCell, error) {
	gen := c.store.Generation() // before the read: a purge after it makes the copy stale
	b, expires, err := c.getEncoded(ctx, cell)
	if err != nil {
		return nil, err
	}
	d, err := newDecodedCell(cell, b, expires.UnixNano(), gen)
	if err != nil { // getEncoded checked b
		return nil, fmt.Errorf("geocache: cell %s: %w", cell, err)
	}
	c.decoded.put(cell, d)
	return d, nil
}

// unpurged reports whether no purge since d was read touched it.
func (c *CandidateCache) unpurged(d *decodedCell) bool {
	cur := c.store.Generation()
	if v := d.valid.Load(); v != cur && c.store.PurgedSince(v, d.key, d.tags) {
		return false
	}
	d.advance(cur)
	return true
}

// refresh reloads an expired decoded cell in the background, once at a
// time per cell, within the bound on concurrent refreshes; the stale copy
// is served meanwhile.
func (c *CandidateCache) refresh(cell string, d *decodedCell) {
	if !d.refreshing.CompareAndSwap(false, true) {
		return
	}
	select {
	case c.sem <- struct{}{}:
	default: // all busy: a later read tries again
		d.refreshing.Store(false)
		return
	}
	c.bg.Add(1)
	go func() {
		defer func() {
			<-c.sem
			c.bg.Done()
		}()
		ctx, cancel := context.WithTimeout(c.bgCtx, refreshTimeout)
		defer cancel()
		if _, err := c.decode(ctx, cell); err != nil {
			d.refreshing.Store(false) // keep serving it; a later read tries again
		}
	}()
}

// getEncoded returns a cell's candidates as encodeCell lays them out, and
// when they expire: the stored bytes (checked) or a load's.
func (c *CandidateCache) getEncoded(ctx context.Context, cell string) ([]byte, time.Time, error) {
	if e, ok := c.store.GetEntry(ctx, cellKey(cell)); ok {
		if scanCell(e.Value, nil) == nil {
			c.hits.Add(1)
			return e.Value, e.Expires, nil
		}
	}
	c.misses.Add(1)
	parent := len(cell) > 1
	if parent {
		_, loaded := c.store.GetEntry(ctx, loadedKey(cell[:len(cell)-1]))
		parent = !loaded
	}
	var cl *call
	var err error
	if parent {
		cl, err = c.load(ctx, cell[:len(cell)-1], true)
	}
	if !parent || (err == nil && !cl.covers(cell)) {
		cl, err = c.load(ctx, cell, false)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return encodeCell(cl.of(cell)), cl.expires, nil
}

// load runs one load of key (split: of its 32 children), or waits for the
// one in flight, and stores what it read.
func (c *CandidateCache) load(ctx context.Context, key string, split bool) (*call, error) {
	id := key
	if split {
		id += "/"
	}
	c.mu.Lock()
	if cl, ok := c.inflight[id]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl, cl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("geocache: waiting for cell %s: %w", key, ctx.Err())
		}
	}
	cl := &call{split: split, done: make(chan struct{})}
	c.inflight[id] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
		close(cl.done)
	}()

	gen := c.store.Generation() // an invalidation after this stops the store
	cl.expires = c.now().Add(c.cfg.TTL)
	if split && c.cfg.BoundedLoader != nil {
		var complete bool
		cl.cands, complete, cl.err = c.cfg.BoundedLoader(ctx, key, c.cfg.ParentRows)
		if cl.err == nil && !complete {
			cl.upTo = firstUnread(cl.cands, key) // its users in cands are never used
		}
	} else {
		cl.cands, cl.err = c.cfg.Loader(ctx, key)
	}
	if cl.err != nil {
		cl.err = fmt.Errorf("geocache: load cell %s: %w", key, cl.err)
		return cl, cl.err
	}
	if !split {
		c.storeCell(ctx, key, cl.cands, gen)
		return cl, nil
	}
	children := make(map[string][]Candidate, 32)
	for _, cd := range cl.cands {
		k := Cell(cd.Lat, cd.Lng, uint(len(key)+1))
		children[k] = append(children[k], cd)
	}
	for i := 0; i < len(base32); i++ {
		k := key + base32[i:i+1]
		if !cl.covers(k) {
			break
		}
		c.storeCell(ctx, k, children[k], gen)
	}
	_, _ = c.store.Set(ctx, loadedKey(key), []byte{1}, c.cfg.TTL, cellTags(key), gen)
	return cl, nil
}

// firstUnread returns the first child of parent that a bounded read in cell
// order did not read whole: the child of the last user read, which the
// bound may have cut.
func firstUnread(cands []Candidate, parent string) string {
	if len(cands) == 0 {
		return parent + base32[:1]
	}
	last := cands[len(cands)-1]
	return Cell(last.Lat, last.Lng, uint(len(parent)+1))
}

// storeCell writes a cell's candidates unless an invalidation since gen
// touched it. A cell too large for the store is simply not cached.
func (c *CandidateCache) storeCell(ctx context.Context, cell string, cands []Candidate, gen uint64) {
	_, _ = c.store.Set(ctx, cellKey(cell), encodeCell(cands), c.cfg.TTL, cellTags(cell), gen)
}

// encodeCell lays out candidates with their unit vectors, so a hit decodes
// without trigonometry: count, then per candidate id, lat, lng, the vector
// (8 bytes each), age (2), gender (length byte + bytes) and Extra (uvarint
// length + bytes).
func encodeCell(cands []Candidate) []byte {
	size := 8
	for _, cd := range cands {
		size += 64 + len(cd.Gender) + len(cd.Extra)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(cands)))
	for _, cd := range cands {
		v := unitVec(cd.Lat, cd.Lng)
		b = binary.LittleEndian.AppendUint64(b, uint64(cd.ID))
		for _, f := range [...]float64{cd.Lat, cd.Lng, v[0], v[1], v[2]} {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(cd.Age))
		g := cd.Gender
		if len(g) > 255 {
			g = g[:255]
		}
		b = append(b, byte(len(g)))
		b = append(b, g...)
		b = binary.AppendUvarint(b, uint64(len(cd.Extra)))
		b = append(b, cd.Extra...)
	}
	return b
}

var errCorruptCell = errors.New("geocache: corrupt cell entry")

// scanCell calls fn (when not nil) with each candidate of an encoded cell,
// its unit vector and the offset of its Extra in b, without allocating
// (Extra aliases b); it returns errCorruptCell for a malformed entry,
// possibly after some calls.
func scanCell(b []byte, fn func(cd Candidate, v vec3, extraAt int)) error {
	all := len(b)
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b))/52 {
		return errCorruptCell
	}
	b = b[w:]
	for i := uint64(0); i < n; i++ {
		if len(b) < 52 {
			return errCorruptCell
		}
		gl := int(b[50])
		if len(b) < 52+gl {
			return errCorruptCell
		}
		xl, xw := binary.Uvarint(b[51+gl:])
		if xw <= 0 || xl > uint64(len(b)-51-gl-xw) {
			return errCorruptCell
		}
		if fn != nil {
			f := func(off int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[off:])) }
			cd := Candidate{ID: int64(binary.LittleEndian.Uint64(b)), Lat: f(8), Lng: f(16), Age: int16(binary.LittleEndian.Uint16(b[48:])),
				Gender: internGender(b[51 : 51+gl])}
			x := 51 + gl + xw
			if xl > 0 {
				cd.Extra = b[x : x+int(xl) : x+int(xl)]
			}
			fn(cd, vec3{f(24), f(32), f(40)}, all-len(b)+x)
		}
		b = b[51+gl+xw+int(xl):]
	}
	if len(b) != 0 {
		return errCorruptCell
	}
	return nil
}

// internGender returns the common genders without allocating.
func internGender(b []byte) string {
	for _, g := range [...]string{"woman", "man", "nonbinary", ""} {
		if string(b) == g {
			return g
		}
	}
	return string(b)
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

// Invalidate drops the given cells, every finer cell inside them and every
// coarser cell containing them (down to MinPrecision), in every origin
// sharing the store. A load in flight for one of them is not stored.
func (c *CandidateCache) Invalidate(cells ...string) {
	var tags, keys []string
	for _, cell := range cells {
		if cell == "" {
			continue
		}
		tags = append(tags, cellTag(cell))
		for p := len(cell) - 1; p >= 1 && uint(p) >= c.cfg.MinPrecision; p-- {
			keys = append(keys, cellKey(cell[:p]))
		}
	}
	ctx := context.Background()
	if len(tags) > 0 {
		c.store.PurgeTags(ctx, tags...)
	}
	if len(keys) > 0 {
		c.store.Delete(ctx, keys...)
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
	it := &Iterator{c: c, lat: lat, lng: lng, radius: radiusM, keep: keep, precision: p, visited: make(map[string]struct{}, 64),
		q: unitVec(lat, lng)}
	half := math.Min(radiusM/EarthRadiusM, math.Pi) / 2
	it.maxChord2 = 4 * math.Sin(half) * math.Sin(half)
	it.pushCell(Cell(lat, lng, p))
	return it, nil
}

// Filter selects candidates without a call per candidate (see
// NearestMatching): age within [MinAge, MaxAge], gender one of Genders, id
// not Self and not in Exclude.
type Filter struct {
	MinAge, MaxAge int16
	Genders        []string
	Self           int64
	Exclude        []int64 // sorted ascending
	// Limit, when positive, promises that the caller takes at most Limit
	// candidates: a point farther than Limit accepted points already seen
	// can never be returned, and is not kept.
	Limit int
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

// genderSet marks which of a cell's genders f accepts.
func (f *Filter) genderSet(genders []string) (set [4]uint64) {
	for i, g := range genders {
		if slices.Contains(f.Genders, g) {
			set[i>>6] |= 1 << (i & 63)
		}
	}
	return set
}

// scan appends the keys of d's points within maxChord2 of q that f accepts.
//
// With f.Limit, bound is a max-heap of the Limit smallest squared chords
// accepted so far; a point beyond its top cannot be among the first Limit
// (ties are kept: the id may order them first).
func (f *Filter) scan(d *decodedCell, q vec3, maxChord2 float64, keys []ckey, bound *[]float64) []ckey {
	genders := f.genderSet(d.genders)
	full := f.Limit > 0 && len(*bound) == f.Limit
	for i := range d.pts {
		p := &d.pts[i]
		if p.age < f.MinAge || p.age > f.MaxAge || genders[p.g>>6]&(1<<(p.g&63)) == 0 || p.id == f.Self {
			continue
		}
		c2 := chord2(q, p.v)
		if c2 > maxChord2 || full && c2 > (*bound)[0] {
			continue
		}
		if _, found := slices.BinarySearch(f.Exclude, p.id); found {
			continue
		}
		keys = append(keys, ckey{c2: c2, id: p.id, i: i})
		if f.Limit > 0 {
			full = pushBound(bound, c2, f.Limit)
		}
	}
	return keys
}

// pushBound adds c2 to the max-heap of the limit smallest values and
// reports whether it holds limit values.
func pushBound(h *[]float64, c2 float64, limit int) bool {
	b := *h
	if len(b) < limit {
		b = append(b, c2)
		for i := len(b) - 1; i > 0; {
			p := (i - 1) / 2
			if b[p] >= b[i] {
				break
			}
			b[p], b[i] = b[i], b[p]
			i = p
		}
		*h = b
		return len(b) == limit
	}
	if c2 >= b[0] {
		return true
	}
	b[0] = c2
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(b) && b[l] > b[m] {
			m = l
		}
		if r < len(b) && b[r] > b[m] {
			m = r
		}
		if m == i {
			return true
		}
		b[i], b[m] = b[m], b[i]
		i = m
	}
}

// Iterator yields candidates nearest first; see CandidateCache.Nearest.
type Iterator struct {
	c         *CandidateCache
	lat, lng  float64
	radius    float64
	keep      func(Candidate) bool
	filter    *Filter   // instead of keep (NearestMatching)
	bound     []float64 // with filter.Limit: see Filter.scan
	precision uint
	visited   map[string]struct{}
	pq        itemHeap
	slab      []item // backs the items of pq (newItem)
	cellsRead int
	q         vec3
	maxChord2 float64
}

// CellsRead reports how many cells the iterator has loaded so far.
func (it *Iterator) CellsRead() int { return it.cellsRead }

type item struct {
	dist   float64
	expand string // non-empty: a cell still to expand
	// else: a cell's remaining candidates, keys a min-heap of them by
	// (squared chord, id), so a caller that stops early never sorts a cell;
	// keys index the points of cell (shared, read only).
	cell *decodedCell
	keys []ckey
}

// ckey orders a cell's candidate (cands[i]) by squared chord, then id.
type ckey struct {
	c2 float64
	id int64
	i  int
}

func (a ckey) less(b ckey) bool { return a.c2 < b.c2 || (a.c2 == b.c2 && a.id < b.id) }

func heapifyKeys(h []ckey) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDownKeys(h, i)
	}
}

func siftDownKeys(h []ckey, i int) {
	n := len(h)
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].less(h[m]) {
			m = l
		}
		if r < n && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// popKey removes the least key.
func popKey(h []ckey) []ckey {
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	siftDownKeys(h, 0)
	return h
}

func (a *item) less(b *item) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if (a.expand != "") != (b.expand != "") {
		return a.expand != "" // expand a cell before returning a candidate at the same distance
	}
	if a.expand != "" {
		return a.expand < b.expand
	}
	return a.keys[0].id < b.keys[0].id
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

func (it *Iterator) pushCell(cell string) {
	it.pushCellBox(cell, geohash.BoundingBox(cell))
}

// pushCellBox is pushCell with the cell's bounding box known.
func (it *Iterator) pushCellBox(cell string, b geohash.Box) {
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
		d, err := it.c.cell(ctx, top.expand)
		if err != nil {
			return Ranked{}, false, err
		}
		it.cellsRead++
		var keys []ckey
		if it.filter != nil {
			keys = it.filter.scan(d, it.q, it.maxChord2, nil, &it.bound)
		} else {
			for i := range d.pts {
				c2 := chord2(it.q, d.pts[i].v)
				if c2 > it.maxChord2 || (it.keep != nil && !it.keep(d.candidate(i))) {
					continue
				}
				keys = append(keys, ckey{c2: c2, id: d.pts[i].id, i: i})
			}
		}
		if len(keys) > 0 {
			heapifyKeys(keys)
			x := it.newItem()
			x.dist, x.cell, x.keys = chordToMeters(keys[0].c2), d, keys
			it.pq.push(x)
		}
		nbrs, boxes := d.neighbors()
		for i, n := range nbrs {
			it.pushCellBox(n, boxes[i])
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
