package geocache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	// Loader reads a cell's users on a miss; required.
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
	Refreshes int
	// TTL is a stored cell's lifetime; default 10s.
	TTL time.Duration
	// MinPrecision is the coarsest cell a walk uses; default 3.
	MinPrecision uint
	// MaxPrecision is the finest cell a walk uses (at most the precision
	// of the cells users are stored in); default 5.
	MaxPrecision uint
	// MaxCells is the most cells a circle may cover at the precision a walk
	// chooses; default 4096.
	MaxCells int
	// Now is the clock of the cache and of its in-process store; default
	// time.Now.
	Now func() time.Time
}

// CandidateCache caches, per geohash cell, the active users located in it,
// in a tiered store. Entries are invalidated when a user moves in or out of
// a cell (Invalidate) — a load in flight then is not stored — and expire
// after TTL. It is safe for concurrent use; concurrent misses on one
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
	cfg.MinPrecision = cmp.Or(cfg.MinPrecision, 3)
	cfg.MaxPrecision = cmp.Or(cfg.MaxPrecision, 5)
	if cfg.ParentRows <= 0 {
		cfg.ParentRows = 1024
	}
	if cfg.MaxPrecision < cfg.MinPrecision {
		return nil, fmt.Errorf("geocache: max precision %d below min precision %d", cfg.MaxPrecision, cfg.MinPrecision)
	}
	if cfg.MaxCells <= 0 {
		cfg.MaxCells = 4096
	}
	cfg.DecodedBytes = cmp.Or(cfg.DecodedBytes, cfg.MaxBytes/2)
	cfg.Grace = cmp.Or(cfg.Grace, cfg.TTL)
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

// precision returns the cell precision the cache uses for a circle, or
// ErrRadiusTooLarge when covering it would take more than MaxCells cells at
// MinPrecision.
func (c *CandidateCache) precision(lat, lng, radiusM float64) (uint, error) {
	p := c.cfg.MaxPrecision
	for ; p >= c.cfg.MinPrecision; p-- {
		if CellCount(lat, lng, radiusM, p) <= c.cfg.MaxCells {
			return p, nil
		}
	}
	return 0, ErrRadiusTooLarge
}
