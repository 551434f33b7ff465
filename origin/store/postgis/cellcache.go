package postgis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/tiered"
)

// CellCacheConfig switches on the cell-candidate cache for suggestions.
type CellCacheConfig struct {
	Enabled bool
	// MaxBytes bounds the in-process memory of the cache; default 1 GiB.
	// Half is the store (cells as stored, user states), half the cells kept
	// decoded for walks that read them in place.
	MaxBytes int64
	TTL      time.Duration // cell entry lifetime; default DefaultCellTTL
	// UserTTL is the lifetime of a cached user state (location, preferences
	// and exclusion set); default 10 min. This process's own writes update
	// it in place and purge other instances' copies; the TTL bounds what
	// writes bypassing the store (or racing through two instances without
	// Redis) can leave stale.
	UserTTL time.Duration
	// Redis, when set, backs the store with Redis: origin instances using
	// the same Redis share cells, user states and invalidations (a user's
	// move purges the cells in every instance within milliseconds).
	Redis *tiered.RedisOptions
	// ParentRows bounds the users a cold miss reads of the cell's parent
	// (geocache.CandidateCacheConfig.ParentRows); default 1024. On the
	// 1M-user bench data a parent holds 2,056 users on a user-weighted
	// mean and up to 6,268, one cell 67 on the same mean.
	ParentRows int
}

// DefaultCellTTL is the default lifetime of a cached cell. Writes through
// the store purge cells at once (in every origin sharing Redis); the TTL
// only bounds how late a change that bypassed the store is seen. An expired
// cell is still served for as long again while a background load refreshes
// it, so the TTL sets the refresh work: every cell in use is reloaded once
// per TTL (at 1 min that was a quarter of the warm bench's allocations).
const DefaultCellTTL = 5 * time.Minute

// DefaultCellCacheBytes is the cell cache's default memory bound: enough for
// the decoded cells of the 1,000,000-user bench (423 MiB at 2 cores' worth of
// bench users) and the store beside them.
const DefaultCellCacheBytes = 1 << 30

func (s *Store) newCellCache(c CellCacheConfig) error {
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultCellCacheBytes
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultCellTTL
	}
	s.userTTL = c.UserTTL
	if s.userTTL <= 0 {
		s.userTTL = 10 * time.Minute
	}
	storeBytes := maxBytes / 2
	// Entries up to 16 MiB (a precision-5 cell of 6,268 users is ~1.5 MB on
	// the bench data): the store's shards must each hold four of the
	// largest, and a quarter of the capacity would leave one shard, one
	// lock for every cell and user state.
	opts := tiered.Options{Capacity: storeBytes, MaxEntrySize: int(min(storeBytes/4, 16<<20)), MaxLifetime: max(ttl, s.userTTL)}
	if c.Redis != nil {
		ro := *c.Redis
		if ro.KeyPrefix == "" {
			ro.KeyPrefix = "spark-origin:"
		}
		opts.Redis = &ro
	}
	st, err := tiered.New(context.Background(), opts)
	if err != nil {
		return fmt.Errorf("postgis: cell cache store: %w", err)
	}
	s.shared = st
	s.refreshSem = make(chan struct{}, userRefreshes)
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.closers = append(s.closers, s.stopRefreshes, st.Close)
	cc, err := geocache.NewCandidateCache(geocache.CandidateCacheConfig{
		Loader:        s.loadCell,
		BoundedLoader: s.loadCellBounded,
		ParentRows:    c.ParentRows,
		Store:         st,
		MaxBytes:      storeBytes,
		DecodedBytes:  maxBytes - storeBytes,
		TTL:           ttl,
		MaxPrecision:  store.CellPrecision, // the loader reads a cell by prefix of the stored cell
		MaxCells:      32768,
	})
	if err != nil {
		return fmt.Errorf("postgis: cell cache: %w", err)
	}
	s.cells = cc
	s.closers = append([]func() error{cc.Close}, s.closers...) // before its store
	return nil
}

// CellCache returns the store's candidate cache (nil when disabled).
func (s *Store) CellCache() *geocache.CandidateCache { return s.cells }

// cellQuery reads the active users of a cell by prefix of their stored
// cell, with the profile fields suggestions return.
const cellQuery = `
		SELECT id, ST_Y(geog::geometry), ST_X(geog::geometry), age, gender, name, bio, photos, uploads, version FROM users
		WHERE is_active AND cell ~>=~ $1 AND cell ~<~ $2 AND geog IS NOT NULL`

// loadCell reads the active users of a cell by prefix of their stored cell,
// with the profile fields suggestions return (in Candidate.Extra), so a
// suggestion built from cached cells needs no query.
func (s *Store) loadCell(ctx context.Context, cell string) ([]geocache.Candidate, error) {
	return s.queryCell(ctx, cell, cellQuery, cell, cell+"~")
}

// loadCellBounded is loadCell for at most limit users, in the order of
// their stored cells (the prefix index's order: no sort).
func (s *Store) loadCellBounded(ctx context.Context, cell string, limit int) ([]geocache.Candidate, bool, error) {
	out, err := s.queryCell(ctx, cell, cellQuery+` ORDER BY cell USING ~<~ LIMIT $3`, cell, cell+"~", limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], false, nil
	}
	return out, true, nil
}

func (s *Store) queryCell(ctx context.Context, cell, query string, args ...any) ([]geocache.Candidate, error) {
	rows, err := s.primary.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgis: load cell %s: %w", cell, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (geocache.Candidate, error) {
		var c geocache.Candidate
		var p store.Profile
		err := r.Scan(&c.ID, &c.Lat, &c.Lng, &c.Age, &c.Gender, &p.Name, &p.Bio, &p.Photos, &p.Uploads, &p.Version)
		c.Extra = encodeProfileExtra(p)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: load cell %s: %w", cell, err)
	}
	return out, nil
}

// encodeProfileExtra packs the profile fields a suggestion returns besides
// those the cell candidate already has: version, name, bio, photos, uploads.
func encodeProfileExtra(p store.Profile) []byte {
	n := 16 + len(p.Name) + len(p.Bio)
	for _, l := range [][]string{p.Photos, p.Uploads} {
		for _, x := range l {
			n += len(x) + 2
		}
	}
	b := binary.AppendVarint(make([]byte, 0, n), p.Version)
	b = appendString(b, p.Name)
	b = appendString(b, p.Bio)
	for _, l := range [][]string{p.Photos, p.Uploads} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, x := range l {
			b = appendString(b, x)
		}
	}
	return b
}

func appendString(b []byte, x string) []byte {
	b = binary.AppendUvarint(b, uint64(len(x)))
	return append(b, x...)
}

var errCorruptEntry = errors.New("postgis: corrupt cache entry")

// reader decodes what encodeProfileExtra and encodeUserState write; the
// first error sticks.
type reader struct {
	b   []byte
	err error
	// alias, when set, is the whole input as a string: string and strings
	// then return substrings of it instead of copies.
	alias string
	// arena, when set, backs the slices strings returns.
	arena *[]string
}

func (r *reader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }
func (r *reader) varint() int64   { return readVarint(r, binary.Varint) }

// readVarint reads one varint with read (binary.Uvarint or binary.Varint).
func readVarint[T int64 | uint64](r *reader, read func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, w := read(r.b)
	if w <= 0 {
		r.err = errCorruptEntry
		return 0
	}
	r.b = r.b[w:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errCorruptEntry
		return ""
	}
	var x string
	if r.alias != "" {
		off := len(r.alias) - len(r.b)
		x = r.alias[off : off+int(n)]
	} else {
		x = string(r.b[:n])
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) strings() []string {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errCorruptEntry
		return nil
	}
	if r.arena == nil {
		out := make([]string, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			out = append(out, r.string())
		}
		return out
	}
	if n == 0 {
		return nil
	}
	start := len(*r.arena)
	for i := uint64(0); i < n && r.err == nil; i++ {
		*r.arena = append(*r.arena, r.string())
	}
	return (*r.arena)[start:len(*r.arena):len(*r.arena)]
}

func (r *reader) float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errCorruptEntry
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// decodeProfileExtra fills the fields encodeProfileExtra packed. The
// strings alias b without copying it: b is a candidate's Extra, which the
// cell cache never writes after decoding a cell (geocache.Candidate.Extra
// is read-only), so they stay valid and unchanged while referenced. The
// photo lists are carved out of *arena (grown as needed), so decoding a page
// of candidates allocates once for all their lists.
func decodeProfileExtra(b []byte, c *store.Candidate, arena *[]string) error {
	r := reader{b: b, alias: unsafe.String(unsafe.SliceData(b), len(b)), arena: arena}
	c.Version = r.varint()
	c.Name = r.string()
	c.Bio = r.string()
	c.Photos = r.strings()
	c.Uploads = r.strings()
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorruptEntry
	}
	return r.err
}

func (s *Store) invalidateCells(cells ...string) {
	if s.cells != nil {
		s.cells.Invalidate(cells...)
	}
}

// cachedNearest builds suggestions from the cell-candidate cache and the
// user's cached exclusion set, without a query: a best-first walk over the
// cached cells yields the eligible candidates nearest first (not self, in
// age range and gender, not swiped, not blocked either way), with their
// profiles from the cells. ok is false when the radius is too large for the
// cache (the caller runs the exact query).
func (s *Store) cachedNearest(ctx context.Context, id int64, at store.Point, p store.Preferences, excl []int64, limit int) ([]store.Candidate, bool, error) {
	radius := float64(p.MaxDistanceKm) * 1000
	it, err := s.cells.NearestMatching(at.Lat, at.Lng, radius, geocache.Filter{
		MinAge: p.MinAge, MaxAge: p.MaxAge, Genders: p.Genders, Self: id, Exclude: excl, Limit: limit})
	if errors.Is(err, geocache.ErrRadiusTooLarge) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
	}
	out := make([]store.Candidate, 0, limit)
	arena := make([]string, 0, 4*limit) // photo lists of the page
	for len(out) < limit {
		r, ok, err := it.Next(ctx)
		if err != nil {
			return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
		}
		if !ok || r.DistanceM > radius {
			break
		}
		c := store.Candidate{Profile: store.Profile{ID: r.ID, Age: r.Age, Gender: r.Gender, Active: true}, DistanceM: r.DistanceM}
		if err := decodeProfileExtra(r.Extra, &c, &arena); err != nil {
			return nil, true, fmt.Errorf("postgis: cached suggestions for %d: candidate %d: %w", id, r.ID, err)
		}
		fillSlices(&c.Profile)
		out = append(out, c)
	}
	return out, true, nil
}
