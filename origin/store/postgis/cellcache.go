package postgis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/tiered"
)

// CellCacheConfig switches on the cell-candidate cache for suggestions.
type CellCacheConfig struct {
	Enabled  bool
	MaxBytes int64         // in-process store size; default 64 MiB
	TTL      time.Duration // entry lifetime; default 10s
	// Redis, when set, backs the store with Redis: origin instances using
	// the same Redis share cells and invalidations (a user's move purges
	// the cells in every instance within milliseconds).
	Redis *tiered.RedisOptions
}

func (s *Store) newCellCache(c CellCacheConfig) error {
	var shared *tiered.Cache
	if c.Redis != nil {
		maxBytes := c.MaxBytes
		if maxBytes <= 0 {
			maxBytes = 64 << 20
		}
		ttl := c.TTL
		if ttl <= 0 {
			ttl = 10 * time.Second
		}
		ro := *c.Redis
		if ro.KeyPrefix == "" {
			ro.KeyPrefix = "spark-origin:"
		}
		st, err := tiered.New(context.Background(), tiered.Options{Capacity: maxBytes, MaxEntrySize: int(maxBytes / 4), MaxLifetime: ttl, Redis: &ro})
		if err != nil {
			return fmt.Errorf("postgis: cell cache store: %w", err)
		}
		shared = st
		s.closers = append(s.closers, st.Close)
	}
	cc, err := geocache.NewCandidateCache(geocache.CandidateCacheConfig{
		Loader:       s.loadCell,
		Store:        shared,
		MaxBytes:     c.MaxBytes,
		TTL:          c.TTL,
		MaxPrecision: store.CellPrecision + 1, // the loader reads a parent cell by prefix of the stored cell
		MaxCells:     32768,
	})
	if err != nil {
		return fmt.Errorf("postgis: cell cache: %w", err)
	}
	s.cells = cc
	s.closers = append(s.closers, cc.Close)
	return nil
}

// CellCache returns the store's candidate cache (nil when disabled).
func (s *Store) CellCache() *geocache.CandidateCache { return s.cells }

// loadCell reads the active users of a cell by prefix of their stored cell.
func (s *Store) loadCell(ctx context.Context, cell string) ([]geocache.Candidate, error) {
	rows, err := s.primary.Query(ctx, `
		SELECT id, ST_Y(geog::geometry), ST_X(geog::geometry), age, gender FROM users
		WHERE is_active AND cell ~>=~ $1 AND cell ~<~ $2 AND geog IS NOT NULL`, cell, cell+"~")
	if err != nil {
		return nil, fmt.Errorf("postgis: load cell %s: %w", cell, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (geocache.Candidate, error) {
		var c geocache.Candidate
		err := r.Scan(&c.ID, &c.Lat, &c.Lng, &c.Age, &c.Gender)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: load cell %s: %w", cell, err)
	}
	return out, nil
}

func (s *Store) invalidateCells(cells ...string) {
	if s.cells != nil {
		s.cells.Invalidate(cells...)
	}
}

// survivorsSQL keeps, in the given order, the candidates that are still
// active and eligible and that the user has not swiped or blocked (either
// way); the distance is recomputed from the stored point.
const survivorsSQL = `
SELECT u.id, u.name, u.age, u.gender, u.bio, u.photos, u.uploads, u.is_active, u.version,
       u.geog <-> ST_SetSRID(ST_MakePoint($4::float8, $3::float8), 4326)::geography
FROM unnest($2::bigint[]) WITH ORDINALITY AS c(id, ord)
JOIN users u ON u.id = c.id
WHERE u.is_active
  AND u.age BETWEEN $5::smallint AND $6::smallint
  AND u.gender = ANY ($7::text[])
  AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = $1 AND s.target_id = u.id)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = u.id)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $1)
ORDER BY c.ord
LIMIT $8`

// cachedNearest builds suggestions from the cell-candidate cache: a
// best-first walk over the cached cells yields eligible candidates nearest
// first, and one query per batch drops the swiped, blocked or changed ones
// (re-checking activity, age and gender on the stored row). ok is false when
// the radius is too large for the cache (the caller runs the exact query).
func (s *Store) cachedNearest(ctx context.Context, id int64, at store.Point, p store.Preferences, limit int) ([]store.Candidate, bool, error) {
	radius := float64(p.MaxDistanceKm) * 1000
	it, err := s.cells.Nearest(at.Lat, at.Lng, radius, func(c geocache.Candidate) bool {
		return c.ID != id && c.Age >= p.MinAge && c.Age <= p.MaxAge && slices.Contains(p.Genders, c.Gender)
	})
	if errors.Is(err, geocache.ErrRadiusTooLarge) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
	}
	out := make([]store.Candidate, 0, limit)
	batch := 2*limit + 16
	ids := make([]int64, 0, batch)
	for done := false; !done && len(out) < limit; batch *= 4 {
		ids = ids[:0]
		for len(ids) < batch {
			r, ok, err := it.Next(ctx)
			if err != nil {
				return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
			}
			if !ok {
				done = true
				break
			}
			ids = append(ids, r.ID)
		}
		if len(ids) == 0 {
			break
		}
		rows, err := s.primary.Query(ctx, survivorsSQL, id, ids, at.Lat, at.Lng, p.MinAge, p.MaxAge, p.Genders, limit-len(out))
		if err != nil {
			return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Candidate, error) {
			var c store.Candidate
			err := r.Scan(&c.ID, &c.Name, &c.Age, &c.Gender, &c.Bio, &c.Photos, &c.Uploads, &c.Active, &c.Version, &c.DistanceM)
			return c, err
		})
		if err != nil {
			return nil, true, fmt.Errorf("postgis: cached suggestions for %d: %w", id, err)
		}
		for _, c := range got {
			if c.DistanceM <= radius {
				out = append(out, c)
			}
		}
	}
	return out, true, nil
}
