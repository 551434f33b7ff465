// Package postgis is the Spark store on PostgreSQL 15 + PostGIS 3 through
// pgx/v5. Suggestions are nearest-first KNN on geography(Point,4326) with the
// age condition inside a partial GiST index and an anti-join on the swipes
// primary key; see shared/design/postgis.md for the measurements behind it.
package postgis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/tiered"
)

// PoolConfig sizes and times the connection pools. Zero fields take the
// defaults of DefaultPoolConfig.
type PoolConfig struct {
	MaxConns         int32         // default 8: 2-4 per database core (2 cores measured)
	MinConns         int32         // default 0
	MinIdleConns     int32         // default 2
	MaxConnLifetime  time.Duration // default 30m
	MaxConnIdleTime  time.Duration // default 5m
	AcquireTimeout   time.Duration // default 2s: deadline to get a connection
	StatementTimeout time.Duration // default 10s, set on every connection
	LockTimeout      time.Duration // default 5s, set on every connection
	// CustomPlans keeps PostgreSQL's default plan_cache_mode. By default the
	// pool sets force_generic_plan: every query here is a fixed shape over
	// unique or KNN indexes, and re-planning the suggestion query on each
	// execution cost 0.8 ms of its 2.7 ms (pgbench, 8 clients: 800 -> 1,099 tps).
	CustomPlans bool
}

// DefaultPoolConfig returns the measured defaults: 8 connections (the 2-core
// database gave its best throughput at 8 clients; more only queue), jit off,
// statement_timeout 10s, lock_timeout 5s, 30 min lifetime, 5 min idle.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{MaxConns: 8, MinIdleConns: 2, MaxConnLifetime: 30 * time.Minute, MaxConnIdleTime: 5 * time.Minute,
		AcquireTimeout: 2 * time.Second, StatementTimeout: 10 * time.Second, LockTimeout: 5 * time.Second}
}

func (c PoolConfig) withDefaults() PoolConfig {
	d := DefaultPoolConfig()
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MinIdleConns <= 0 {
		c.MinIdleConns = min(d.MinIdleConns, c.MaxConns)
	}
	if c.MaxConnLifetime <= 0 {
		c.MaxConnLifetime = d.MaxConnLifetime
	}
	if c.MaxConnIdleTime <= 0 {
		c.MaxConnIdleTime = d.MaxConnIdleTime
	}
	if c.AcquireTimeout <= 0 {
		c.AcquireTimeout = d.AcquireTimeout
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = d.StatementTimeout
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = d.LockTimeout
	}
	return c
}

// Config selects the databases.
type Config struct {
	URL        string // primary: matching, swipes, location writes, chat writes
	ReplicaURL string // optional: profile reads and message history
	Pool       PoolConfig
	CellCache  CellCacheConfig // cell-candidate cache for suggestions
}

// Store implements store.Store on PostGIS.
type Store struct {
	primary *pgxpool.Pool
	replica *pgxpool.Pool // == primary when no replica
	pool    PoolConfig
	cells   *geocache.CandidateCache // nil: exact KNN query only
	shared  *tiered.Cache            // the cells' store, also holding user states (nil with cells)
	userTTL time.Duration            // lifetime of a cached user state
	locks   *userLocks               // per-user serialisation of cached-state updates
	// Background reloads of user states near expiry (with the cell cache).
	refreshSem chan struct{}
	refreshing sync.Map // user id -> struct{}: reload running
	bg         sync.WaitGroup
	bgCtx      context.Context
	bgCancel   context.CancelFunc
	closers    []func() error // cell cache stores, closed by Close
	// margin draws the hysteresis margin of each location update.
	margin func() float64
}

var _ store.Store = (*Store)(nil)

func newPool(ctx context.Context, url string, pc PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgis: parse database url: %w", err)
	}
	cfg.MaxConns = pc.MaxConns
	cfg.MinConns = pc.MinConns
	cfg.MinIdleConns = pc.MinIdleConns
	cfg.MaxConnLifetime = pc.MaxConnLifetime
	cfg.MaxConnIdleTime = pc.MaxConnIdleTime
	rp := cfg.ConnConfig.RuntimeParams
	rp["statement_timeout"] = strconv.FormatInt(pc.StatementTimeout.Milliseconds(), 10)
	rp["lock_timeout"] = strconv.FormatInt(pc.LockTimeout.Milliseconds(), 10)
	rp["jit"] = "off"
	if !pc.CustomPlans {
		rp["plan_cache_mode"] = "force_generic_plan"
	}
	if rp["application_name"] == "" {
		rp["application_name"] = "spark-origin"
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgis: open pool: %w", err)
	}
	return p, nil
}

// Open connects to the primary (and replica) and checks they answer.
func Open(ctx context.Context, c Config) (*Store, error) {
	if c.URL == "" {
		return nil, errors.New("postgis: empty database url")
	}
	pc := c.Pool.withDefaults()
	primary, err := newPool(ctx, c.URL, pc)
	if err != nil {
		return nil, err
	}
	s := &Store{primary: primary, replica: primary, pool: pc, locks: new(userLocks), margin: geocache.RandomHysteresisM}
	if c.ReplicaURL != "" {
		if s.replica, err = newPool(ctx, c.ReplicaURL, pc); err != nil {
			primary.Close()
			return nil, fmt.Errorf("postgis: replica: %w", err)
		}
	}
	if c.CellCache.Enabled {
		if err := s.newCellCache(c.CellCache); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Primary exposes the primary pool (migrations, seeding, tests).
func (s *Store) Primary() *pgxpool.Pool { return s.primary }

// Close implements store.Store.
func (s *Store) Close() {
	for _, c := range s.closers {
		_ = c()
	}
	if s.replica != s.primary {
		s.replica.Close()
	}
	s.primary.Close()
}

// Ping implements store.Store: both pools must answer.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	if err := s.primary.Ping(ctx); err != nil {
		return fmt.Errorf("postgis: ping primary: %w", err)
	}
	if s.replica != s.primary {
		if err := s.replica.Ping(ctx); err != nil {
			return fmt.Errorf("postgis: ping replica: %w", err)
		}
	}
	return nil
}

// acquireCtx bounds an operation by the acquire timeout plus the statement
// timeout unless the caller's deadline is sooner.
func (s *Store) acquireCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.pool.AcquireTimeout+s.pool.StatementTimeout)
}

// PoolStat is one pool's counters; see PoolStats.
type PoolStat struct {
	Name                           string
	Acquired, Idle, Total, Max     int32
	AcquireCount, AcquireWaitNanos int64
}

// PoolStats reports both pools (one entry when there is no replica).
func (s *Store) PoolStats() []PoolStat {
	one := func(name string, p *pgxpool.Pool) PoolStat {
		st := p.Stat()
		return PoolStat{Name: name, Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(),
			Max: st.MaxConns(), AcquireCount: st.AcquireCount(), AcquireWaitNanos: st.AcquireDuration().Nanoseconds()}
	}
	out := []PoolStat{one("primary", s.primary)}
	if s.replica != s.primary {
		out = append(out, one("replica", s.replica))
	}
	return out
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgis: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("postgis: %s: %w", what, err)
}

func dirToDB(d store.Direction) int16 {
	switch d {
	case store.Like:
		return 1
	case store.Superlike:
		return 2
	}
	return -1
}

func dirFromDB(v int16) store.Direction {
	switch v {
	case 1:
		return store.Like
	case 2:
		return store.Superlike
	}
	return store.Pass
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.NewUser) (int64, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var id int64
	var cell *string
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		var lat, lng *float64
		if u.Location != nil {
			if err := geocache.ValidatePoint(u.Location.Lat, u.Location.Lng); err != nil {
				return fmt.Errorf("%w: %w", store.ErrInvalid, err)
			}
			sLat, sLng := geocache.SnapToGrid(u.Location.Lat, u.Location.Lng)
			lat, lng = &sLat, &sLng
			c := geocache.Cell(sLat, sLng, store.CellPrecision)
			cell = &c
		}
		photos := u.Profile.Photos
		if photos == nil {
			photos = []string{}
		}
		err := tx.QueryRow(ctx, `
			INSERT INTO users (name, age, gender, bio, photos, is_active, geog, cell, location_updated_at)
			VALUES ($1, $2, $3, $4, $5, $6,
			        CASE WHEN $7::float8 IS NULL THEN NULL
			             ELSE ST_SetSRID(ST_MakePoint($8::float8, $7::float8), 4326)::geography END,
			        $9, CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() END)
			RETURNING id`,
			u.Profile.Name, u.Profile.Age, u.Profile.Gender, u.Profile.Bio, photos, u.Profile.Active, lat, lng, cell).Scan(&id)
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if p := u.Preferences; p != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO preferences (user_id, min_age, max_age, max_distance_km, genders)
				VALUES ($1, $2, $3, $4, $5)`, id, p.MinAge, p.MaxAge, p.MaxDistanceKm, p.Genders); err != nil {
				return fmt.Errorf("insert preferences: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgis: create user: %w", err)
	}
	if cell != nil {
		s.invalidateCells(*cell)
	}
	return id, nil
}

const profileCols = `id, name, age, gender, bio, photos, uploads, is_active, version`

func scanProfile(row pgx.Row) (store.Profile, error) {
	var p store.Profile
	err := row.Scan(&p.ID, &p.Name, &p.Age, &p.Gender, &p.Bio, &p.Photos, &p.Uploads, &p.Active, &p.Version)
	fillSlices(&p)
	return p, err
}

// fillSlices makes nil lists empty, as the memory store returns them.
func fillSlices(p *store.Profile) {
	if p.Photos == nil {
		p.Photos = []string{}
	}
	if p.Uploads == nil {
		p.Uploads = []string{}
	}
}

// GetProfile implements store.Store; it reads from the replica when configured.
func (s *Store) GetProfile(ctx context.Context, id int64) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	p, err := scanProfile(s.replica.QueryRow(ctx, `SELECT `+profileCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.Profile{}, notFound(err, fmt.Sprintf("get profile %d", id))
	}
	return p, nil
}

// UpdateProfile implements store.Store.
func (s *Store) UpdateProfile(ctx context.Context, id int64, u store.ProfileUpdate, ifVersion int64) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	photos := u.Photos
	if photos == nil {
		photos = []string{}
	}
	var p store.Profile
	var cell *string
	err := s.primary.QueryRow(ctx, `
		UPDATE users SET name = $2, age = $3, gender = $4, bio = $5, photos = $6, is_active = $7,
		       version = version + 1, updated_at = now()
		WHERE id = $1 AND ($8::bigint = 0 OR version = $8::bigint)
		RETURNING `+profileCols+`, cell`, id, u.Name, u.Age, u.Gender, u.Bio, photos, u.Active, ifVersion).
		Scan(&p.ID, &p.Name, &p.Age, &p.Gender, &p.Bio, &p.Photos, &p.Uploads, &p.Active, &p.Version, &cell)
	if err == nil {
		fillSlices(&p)
		if cell != nil {
			// Age, gender or activity may have changed: the cached rows are stale.
			s.invalidateCells(*cell)
		}
		return p, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Profile{}, fmt.Errorf("postgis: update profile %d: %w", id, err)
	}
	var exists bool
	if err := s.primary.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return store.Profile{}, fmt.Errorf("postgis: update profile %d: %w", id, err)
	}
	if !exists {
		return store.Profile{}, fmt.Errorf("postgis: update profile %d: %w", id, store.ErrNotFound)
	}
	return store.Profile{}, fmt.Errorf("postgis: update profile %d at version %d: %w", id, ifVersion, store.ErrPreconditionFailed)
}

// AddPhoto implements store.Store: one UPDATE checks the count and the
// name under the row lock, so concurrent uploads cannot pass the limit.
func (s *Store) AddPhoto(ctx context.Context, id int64, name string, max int) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var cell *string
	var p store.Profile
	err := s.primary.QueryRow(ctx, `
		UPDATE users SET uploads = array_append(uploads, $2::text), version = version + 1, updated_at = now()
		WHERE id = $1 AND cardinality(uploads) < $3 AND NOT ($2::text = ANY (uploads))
		RETURNING `+profileCols+`, cell`, id, name, max).
		Scan(&p.ID, &p.Name, &p.Age, &p.Gender, &p.Bio, &p.Photos, &p.Uploads, &p.Active, &p.Version, &cell)
	if err == nil {
		fillSlices(&p)
		if cell != nil {
			s.invalidateCells(*cell) // the cells hold uploads and version for suggestions
		}
		return p, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Profile{}, fmt.Errorf("postgis: add photo to %d: %w", id, err)
	}
	var exists bool
	if err := s.primary.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return store.Profile{}, fmt.Errorf("postgis: add photo to %d: %w", id, err)
	}
	if !exists {
		return store.Profile{}, fmt.Errorf("postgis: add photo to %d: %w", id, store.ErrNotFound)
	}
	return store.Profile{}, fmt.Errorf("postgis: add photo %q to %d: limit %d reached or name taken: %w", name, id, max, store.ErrConflict)
}

// RemovePhoto implements store.Store.
func (s *Store) RemovePhoto(ctx context.Context, id int64, name string) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var cell *string
	var p store.Profile
	err := s.primary.QueryRow(ctx, `
		UPDATE users SET uploads = array_remove(uploads, $2::text), version = version + 1, updated_at = now()
		WHERE id = $1 AND $2::text = ANY (uploads)
		RETURNING `+profileCols+`, cell`, id, name).
		Scan(&p.ID, &p.Name, &p.Age, &p.Gender, &p.Bio, &p.Photos, &p.Uploads, &p.Active, &p.Version, &cell)
	if err != nil {
		return store.Profile{}, notFound(err, fmt.Sprintf("remove photo %q of %d", name, id))
	}
	fillSlices(&p)
	if cell != nil {
		s.invalidateCells(*cell) // the cells hold uploads and version for suggestions
	}
	return p, nil
}

// GetPreferences implements store.Store.
func (s *Store) GetPreferences(ctx context.Context, id int64) (store.Preferences, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var minAge, maxAge *int16
	var dist *int32
	var genders []string
	err := s.primary.QueryRow(ctx, `
		SELECT p.min_age, p.max_age, p.max_distance_km, p.genders
		FROM users u LEFT JOIN preferences p ON p.user_id = u.id WHERE u.id = $1`, id).Scan(&minAge, &maxAge, &dist, &genders)
	if err != nil {
		return store.Preferences{}, notFound(err, fmt.Sprintf("get preferences %d", id))
	}
	if minAge == nil {
		return store.DefaultPreferences(), nil
	}
	return store.Preferences{MinAge: *minAge, MaxAge: *maxAge, MaxDistanceKm: *dist, Genders: genders}, nil
}

// PutPreferences implements store.Store.
func (s *Store) PutPreferences(ctx context.Context, id int64, p store.Preferences) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	tag, err := s.primary.Exec(ctx, `
		INSERT INTO preferences (user_id, min_age, max_age, max_distance_km, genders)
		SELECT id, $2, $3, $4, $5 FROM users WHERE id = $1
		ON CONFLICT (user_id) DO UPDATE SET min_age = EXCLUDED.min_age, max_age = EXCLUDED.max_age,
		    max_distance_km = EXCLUDED.max_distance_km, genders = EXCLUDED.genders`,
		id, p.MinAge, p.MaxAge, p.MaxDistanceKm, p.Genders)
	s.updateUserState(ctx, id, err == nil, func(u *userState) {
		u.Prefs = store.Preferences{MinAge: p.MinAge, MaxAge: p.MaxAge, MaxDistanceKm: p.MaxDistanceKm, Genders: slices.Clone(p.Genders)}
	})
	if err != nil {
		return fmt.Errorf("postgis: put preferences %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgis: put preferences %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetLocation implements store.Store (always on the primary): the stored
// point is read under the row lock, the coarse point to store decided from
// it (geocache.NextGridPoint), and written only when it changed.
func (s *Store) SetLocation(ctx context.Context, id int64, pt store.Point) (store.LocationChange, error) {
	if err := geocache.ValidatePoint(pt.Lat, pt.Lng); err != nil {
		return store.LocationChange{}, fmt.Errorf("postgis: set location: %w: %w", store.ErrInvalid, err)
	}
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	margin := s.margin()
	var ch store.LocationChange
	// A location is superseded within seconds: losing the last few hundred
	// milliseconds of them in a database crash is acceptable, waiting for the
	// WAL flush on every update is not. Only this transaction skips the wait
	// (set_config(..., true) is SET LOCAL, sent with the read).
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		ch = store.LocationChange{}
		var oldLat, oldLng *float64
		var oldCell *string
		err := tx.QueryRow(ctx, `
			SELECT ST_Y(geog::geometry), ST_X(geog::geometry), cell, set_config('synchronous_commit', 'off', true)
			FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&oldLat, &oldLng, &oldCell, nil)
		if err != nil {
			return err
		}
		if oldCell != nil {
			ch.OldCell = *oldCell
		}
		hasOld := oldLat != nil && oldLng != nil
		var o store.Point
		if hasOld {
			o = store.Point{Lat: *oldLat, Lng: *oldLng}
		}
		lat, lng, kept := geocache.NextGridPoint(o.Lat, o.Lng, hasOld, pt.Lat, pt.Lng, margin)
		ch.Stored, ch.Kept = store.Point{Lat: lat, Lng: lng}, kept
		if kept {
			ch.NewCell = ch.OldCell
			return nil
		}
		ch.NewCell = geocache.Cell(lat, lng, store.CellPrecision)
		_, err = tx.Exec(ctx, `
			UPDATE users SET geog = ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography, cell = $4,
			       location_updated_at = now()
			WHERE id = $1`, id, lat, lng, ch.NewCell)
		return err
	})
	if err != nil || !ch.Kept {
		s.updateUserState(ctx, id, err == nil, func(u *userState) { u.HasLocation, u.At = true, ch.Stored })
	}
	if err != nil {
		return store.LocationChange{}, notFound(err, fmt.Sprintf("set location %d", id))
	}
	if !ch.Kept {
		s.invalidateCells(ch.OldCell, ch.NewCell)
	}
	return ch, nil
}

// suggestionsSQL is the nearest-first query of design/postgis.md on
// geography: KNN order by <-> on the partial GiST (geog, age) index, age
// parameters cast to smallint so the condition stays inside the index, an
// anti-join on the swipes primary key, blocks both ways, and the radius
// checked outside the LIMIT (if any of the n nearest eligible users is beyond
// the radius, everyone inside it is already among them). Stored points are
// cell centres, so users of one cell tie: the inner limit keeps every user
// tied with the n-th (WITH TIES, still on the index order) and the outer one
// cuts by (dist, id), so a page is the same whatever order the index
// returned the tied users in.
const suggestionsSQL = `
SELECT id, name, age, gender, bio, photos, uploads, is_active, version, dist FROM (
    SELECT u.id, u.name, u.age, u.gender, u.bio, u.photos, u.uploads, u.is_active, u.version,
           u.geog <-> ST_SetSRID(ST_MakePoint($3::float8, $2::float8), 4326)::geography AS dist
    FROM users u
    WHERE u.is_active
      AND u.age BETWEEN $4::smallint AND $5::smallint
      AND u.gender = ANY ($6::text[])
      AND u.id <> $1
      AND NOT EXISTS (SELECT 1 FROM swipes s WHERE s.swiper_id = $1 AND s.target_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $1)
    ORDER BY u.geog <-> ST_SetSRID(ST_MakePoint($3::float8, $2::float8), 4326)::geography
    FETCH FIRST $7 ROWS WITH TIES
) nearest
WHERE dist <= $8::float8
ORDER BY dist, id
LIMIT $7`

// SuggestionsSQL returns the suggestion query (for benchmarks and EXPLAIN).
func SuggestionsSQL() string { return suggestionsSQL }

// Suggestions implements store.Store (always on the primary). With the cell
// cache, a user whose state and cells are cached is answered without a query.
func (s *Store) Suggestions(ctx context.Context, id int64, limit int) ([]store.Candidate, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	if s.cells != nil {
		u, err := s.cachedUserState(ctx, id)
		if err != nil {
			return nil, err
		}
		if !u.HasLocation {
			return nil, fmt.Errorf("postgis: suggestions for %d: %w", id, store.ErrNoLocation)
		}
		out, ok, err := s.cachedNearest(ctx, id, u.At, u.Prefs, u.Excluded, limit)
		if ok || err != nil {
			return out, err
		}
		return s.ExactNearest(ctx, id, u.At, u.Prefs, limit)
	}
	var lat, lng *float64
	var minAge, maxAge *int16
	var dist *int32
	var genders []string
	err := s.primary.QueryRow(ctx, `
		SELECT ST_Y(u.geog::geometry), ST_X(u.geog::geometry), p.min_age, p.max_age, p.max_distance_km, p.genders
		FROM users u LEFT JOIN preferences p ON p.user_id = u.id WHERE u.id = $1`, id).
		Scan(&lat, &lng, &minAge, &maxAge, &dist, &genders)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("suggestions for %d", id))
	}
	if lat == nil {
		return nil, fmt.Errorf("postgis: suggestions for %d: %w", id, store.ErrNoLocation)
	}
	prefs := store.DefaultPreferences()
	if minAge != nil {
		prefs = store.Preferences{MinAge: *minAge, MaxAge: *maxAge, MaxDistanceKm: *dist, Genders: genders}
	}
	return s.Nearest(ctx, id, store.Point{Lat: *lat, Lng: *lng}, prefs, limit)
}

// Nearest answers suggestions for a point and preferences: through the
// cell-candidate cache when enabled and the radius suits it, else by the
// exact KNN query.
func (s *Store) Nearest(ctx context.Context, id int64, at store.Point, p store.Preferences, limit int) ([]store.Candidate, error) {
	if s.cells != nil {
		u, err := s.cachedUserState(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // no such user: nothing to exclude
			return nil, err
		}
		out, ok, err := s.cachedNearest(ctx, id, at, p, u.Excluded, limit)
		if ok || err != nil {
			return out, err
		}
	}
	return s.ExactNearest(ctx, id, at, p, limit)
}

// ExactNearest runs the nearest-first KNN query (no cache).
func (s *Store) ExactNearest(ctx context.Context, id int64, at store.Point, p store.Preferences, limit int) ([]store.Candidate, error) {
	rows, err := s.primary.Query(ctx, suggestionsSQL, id, at.Lat, at.Lng, p.MinAge, p.MaxAge, p.Genders, limit,
		float64(p.MaxDistanceKm)*1000)
	if err != nil {
		return nil, fmt.Errorf("postgis: suggestions for %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Candidate, error) {
		var c store.Candidate
		err := r.Scan(&c.ID, &c.Name, &c.Age, &c.Gender, &c.Bio, &c.Photos, &c.Uploads, &c.Active, &c.Version, &c.DistanceM)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: suggestions for %d: %w", id, err)
	}
	return out, nil
}

func pairOf(a, b int64) (int64, int64) {
	if a < b {
		return a, b
	}
	return b, a
}

// Swipe implements store.Store: one transaction serialised per user pair by
// an advisory lock, so two concurrent mutual likes make exactly one match.
func (s *Store) Swipe(ctx context.Context, id, target int64, d store.Direction) (store.SwipeResult, error) {
	if id == target {
		return store.SwipeResult{}, fmt.Errorf("postgis: swipe on self: %w", store.ErrInvalid)
	}
	if !d.Valid() {
		return store.SwipeResult{}, fmt.Errorf("postgis: swipe direction %q: %w", d, store.ErrInvalid)
	}
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	lo, hi := pairOf(id, target)
	res := store.SwipeResult{Direction: d}
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		res = store.SwipeResult{Direction: d}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::bigint::text || ':' || $2::bigint::text, 1103))`,
			lo, hi); err != nil {
			return fmt.Errorf("lock pair: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE id IN ($1, $2)`, lo, hi).Scan(&n); err != nil {
			return fmt.Errorf("check users: %w", err)
		}
		if n != 2 {
			return fmt.Errorf("user %d: %w", target, store.ErrNotFound)
		}
		// Under the pair lock nobody else inserts this key: the subquery on
		// swipes sees the pre-statement snapshot, so exactly one of the two
		// columns is non-null.
		var inserted, existing *int16
		err := tx.QueryRow(ctx, `
			WITH ins AS (
			  INSERT INTO swipes (swiper_id, target_id, direction) VALUES ($1, $2, $3)
			  ON CONFLICT (swiper_id, target_id) DO NOTHING RETURNING direction)
			SELECT (SELECT direction FROM ins),
			       (SELECT direction FROM swipes WHERE swiper_id = $1 AND target_id = $2)`,
			id, target, dirToDB(d)).Scan(&inserted, &existing)
		if err != nil {
			return fmt.Errorf("insert swipe: %w", err)
		}
		if inserted == nil {
			if existing == nil {
				return fmt.Errorf("swipe %d->%d neither inserted nor found", id, target)
			}
			if prev := dirFromDB(*existing); prev != d {
				return fmt.Errorf("swipe %d->%d already %s: %w", id, target, prev, store.ErrConflict)
			}
		}
		res.Created = inserted != nil
		var m store.Match
		var ended *time.Time
		err = tx.QueryRow(ctx, `
			SELECT m.id, m.user_a, m.user_b, c.id, m.created_at, m.unmatched_at
			FROM matches m JOIN conversations c ON c.match_id = m.id
			WHERE m.user_a = $1 AND m.user_b = $2`, lo, hi).
			Scan(&m.ID, &m.UserA, &m.UserB, &m.ConversationID, &m.CreatedAt, &ended)
		switch {
		case err == nil:
			if ended == nil {
				m.PeerID = target
				res.Match = &m
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read match: %w", err)
		}
		if !d.Positive() {
			return nil
		}
		var mutual bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM swipes WHERE swiper_id = $2 AND target_id = $1 AND direction > 0)
			   AND NOT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)
			                                          OR (blocker_id = $2 AND blocked_id = $1))`,
			id, target).Scan(&mutual); err != nil {
			return fmt.Errorf("check mutual like: %w", err)
		}
		if !mutual {
			return nil
		}
		if err := tx.QueryRow(ctx, `
			WITH m AS (INSERT INTO matches (user_a, user_b) VALUES ($1, $2) RETURNING id, created_at),
			     c AS (INSERT INTO conversations (match_id, user_a, user_b, created_at)
			           SELECT id, $1, $2, created_at FROM m RETURNING id)
			SELECT m.id, c.id, m.created_at FROM m, c`, lo, hi).Scan(&m.ID, &m.ConversationID, &m.CreatedAt); err != nil {
			return fmt.Errorf("create match: %w", err)
		}
		m.UserA, m.UserB, m.PeerID = lo, hi, target
		res.Match = &m
		return nil
	})
	s.updateUserState(ctx, id, err == nil, func(u *userState) { u.exclude(target) })
	if err != nil {
		return store.SwipeResult{}, fmt.Errorf("postgis: swipe %d->%d: %w", id, target, err)
	}
	return res, nil
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, id, target int64) error {
	if id == target {
		return fmt.Errorf("postgis: block self: %w", store.ErrInvalid)
	}
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	lo, hi := pairOf(id, target)
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO blocks (blocker_id, blocked_id)
			SELECT $1, id FROM users WHERE id = $2 ON CONFLICT DO NOTHING`, id, target)
		if err != nil {
			return fmt.Errorf("insert block: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, target).Scan(&exists); err != nil {
				return fmt.Errorf("check user: %w", err)
			}
			if !exists {
				return fmt.Errorf("user %d: %w", target, store.ErrNotFound)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE matches SET unmatched_at = now()
			WHERE user_a = $1 AND user_b = $2 AND unmatched_at IS NULL`, lo, hi); err != nil {
			return fmt.Errorf("end match: %w", err)
		}
		return nil
	})
	// Blocks hide both ways: both users' exclusion sets change.
	s.updateUserState(ctx, id, err == nil, func(u *userState) { u.exclude(target) })
	s.updateUserState(ctx, target, err == nil, func(u *userState) { u.exclude(id) })
	if err != nil {
		return fmt.Errorf("postgis: block %d by %d: %w", target, id, err)
	}
	return nil
}

// Blocked implements store.Store: two primary-key lookups on the primary.
func (s *Store) Blocked(ctx context.Context, a, b int64) (bool, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var blocked bool
	if err := s.primary.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blocks
		WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1))`, a, b).Scan(&blocked); err != nil {
		return false, fmt.Errorf("postgis: blocked %d %d: %w", a, b, err)
	}
	return blocked, nil
}

// BlockedWith implements store.Store: both directions on the primary (a
// replica could still miss a block just made), each through its index
// (the primary key, blocks_blocked).
func (s *Store) BlockedWith(ctx context.Context, id int64, maxIDs int) ([]int64, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, `
		SELECT blocked_id FROM blocks WHERE blocker_id = $1
		UNION
		SELECT blocker_id FROM blocks WHERE blocked_id = $1
		ORDER BY 1 LIMIT $2`, id, max(maxIDs, 0))
	if err != nil {
		return nil, fmt.Errorf("postgis: blocked with %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgis: blocked with %d: %w", id, err)
	}
	return out, nil
}

// ListMatches implements store.Store.
func (s *Store) ListMatches(ctx context.Context, id int64) ([]store.Match, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, `
		SELECT m.id, m.user_a, m.user_b, c.id, m.created_at
		FROM matches m JOIN conversations c ON c.match_id = m.id
		WHERE (m.user_a = $1 OR m.user_b = $1) AND m.unmatched_at IS NULL
		ORDER BY m.id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("postgis: list matches %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Match, error) {
		var m store.Match
		err := r.Scan(&m.ID, &m.UserA, &m.UserB, &m.ConversationID, &m.CreatedAt)
		m.PeerID = m.Peer(id)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: list matches %d: %w", id, err)
	}
	return out, nil
}

// Unmatch implements store.Store.
func (s *Store) Unmatch(ctx context.Context, id, matchID int64) (store.Match, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var m store.Match
	err := s.primary.QueryRow(ctx, `
		UPDATE matches m SET unmatched_at = now()
		FROM conversations c
		WHERE m.id = $2 AND c.match_id = m.id AND (m.user_a = $1 OR m.user_b = $1) AND m.unmatched_at IS NULL
		RETURNING m.id, m.user_a, m.user_b, c.id, m.created_at`, id, matchID).
		Scan(&m.ID, &m.UserA, &m.UserB, &m.ConversationID, &m.CreatedAt)
	if err != nil {
		return store.Match{}, notFound(err, fmt.Sprintf("unmatch %d", matchID))
	}
	m.PeerID = m.Peer(id)
	return m, nil
}

// ListConversations implements store.Store. Unread counts are count(*) on the
// partial messages_unread index (design/postgis.md: as cheap as a counter
// table, without a trigger on every insert).
func (s *Store) ListConversations(ctx context.Context, id int64) ([]store.ConversationSummary, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, `
		SELECT c.id, c.match_id, CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END, c.created_at,
		       lm.id, lm.sender_id, lm.body, lm.client_msg_id, lm.created_at,
		       (SELECT count(*) FROM messages um
		         WHERE um.conversation_id = c.id AND um.deleted_at IS NULL AND um.sender_id <> $1
		           AND um.id > COALESCE(r.last_read_message_id, 0))
		FROM conversations c
		JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
		LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = $1
		LEFT JOIN LATERAL (
		    SELECT m.id, m.sender_id, m.body, m.client_msg_id, m.created_at FROM messages m
		    WHERE m.conversation_id = c.id AND m.deleted_at IS NULL
		    ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lm ON true
		WHERE c.user_a = $1 OR c.user_b = $1
		ORDER BY COALESCE(lm.created_at, c.created_at) DESC, c.id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("postgis: list conversations %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ConversationSummary, error) {
		var c store.ConversationSummary
		var mid, sender *int64
		var body, cid *string
		var at *time.Time
		err := r.Scan(&c.ID, &c.MatchID, &c.PeerID, &c.CreatedAt, &mid, &sender, &body, &cid, &at, &c.UnreadCount)
		if mid != nil {
			c.LastMessage = &store.Message{ID: *mid, ConversationID: c.ID, SenderID: *sender, Body: *body, ClientMsgID: *cid, CreatedAt: *at}
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: list conversations %d: %w", id, err)
	}
	return out, nil
}

const participantSQL = `SELECT EXISTS (
	SELECT 1 FROM conversations c JOIN matches m ON m.id = c.match_id AND m.unmatched_at IS NULL
	WHERE c.id = $1 AND (c.user_a = $2 OR c.user_b = $2))`

// historySQL is one page of a conversation's history and the participant
// check in one statement (one round trip): no row when id is not a
// participant of a live match's conversation, one row of NULLs when the page
// is empty, else the page. %s is the keyset condition on the lateral page.
const historySQL = `
	SELECT m.id, COALESCE(m.sender_id, 0), COALESCE(m.body, ''), COALESCE(m.client_msg_id, ''), COALESCE(m.created_at, 'epoch')
	FROM conversations c
	JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
	LEFT JOIN LATERAL (
		SELECT id, sender_id, body, client_msg_id, created_at FROM messages
		WHERE conversation_id = c.id AND deleted_at IS NULL %s
		ORDER BY created_at DESC, id DESC LIMIT $3) m ON true
	WHERE c.id = $1 AND (c.user_a = $2 OR c.user_b = $2)
	ORDER BY m.created_at DESC, m.id DESC`

var (
	historyFirstSQL  = fmt.Sprintf(historySQL, "")
	historyBeforeSQL = fmt.Sprintf(historySQL,
		"AND (created_at, id) < (SELECT created_at, id FROM messages WHERE id = $4 AND conversation_id = c.id)")
)

// ListMessages implements store.Store: keyset paging on
// (conversation_id, created_at DESC, id DESC) WHERE deleted_at IS NULL, read
// from the replica when configured, with the participant check in the same
// statement.
func (s *Store) ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]store.Message, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	if before > 0 {
		rows, err = s.replica.Query(ctx, historyBeforeSQL, convID, id, limit, before)
	} else {
		rows, err = s.replica.Query(ctx, historyFirstSQL, convID, id, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("postgis: list messages %d: %w", convID, err)
	}
	participant := false
	out := make([]store.Message, 0, limit)
	var msgID *int64
	var m store.Message
	_, err = pgx.ForEachRow(rows, []any{&msgID, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt}, func() error {
		participant = true
		if msgID != nil {
			m.ID, m.ConversationID = *msgID, convID
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: list messages %d: %w", convID, err)
	}
	if !participant {
		return nil, fmt.Errorf("postgis: conversation %d: %w", convID, store.ErrNotFound)
	}
	return out, nil
}

func scanMessage(r pgx.CollectableRow) (store.Message, error) {
	var m store.Message
	err := r.Scan(&m.ID, &m.ConversationID, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt)
	return m, err
}

// SendMessage implements store.Store: one statement on the happy path; the
// unique (conversation_id, sender_id, client_msg_id) makes retries idempotent.
func (s *Store) SendMessage(ctx context.Context, id, convID int64, body, clientMsgID string) (store.Message, bool, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	m := store.Message{ConversationID: convID, SenderID: id, Body: body, ClientMsgID: clientMsgID}
	err := s.primary.QueryRow(ctx, `
		INSERT INTO messages (conversation_id, sender_id, body, client_msg_id)
		SELECT $1, $2, $3, $4 WHERE `+participantSQL[len("SELECT "):]+`
		ON CONFLICT (conversation_id, sender_id, client_msg_id) DO NOTHING
		RETURNING id, created_at`, convID, id, body, clientMsgID).Scan(&m.ID, &m.CreatedAt)
	if err == nil {
		return m, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, false, fmt.Errorf("postgis: send message in %d: %w", convID, err)
	}
	rows, err := s.primary.Query(ctx, `
		SELECT id, conversation_id, sender_id, body, client_msg_id, created_at FROM messages
		WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3 AND `+participantSQL[len("SELECT "):],
		convID, id, clientMsgID)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("postgis: send message in %d: %w", convID, err)
	}
	prev, err := pgx.CollectExactlyOneRow(rows, scanMessage)
	if err != nil {
		return store.Message{}, false, notFound(err, fmt.Sprintf("send message in conversation %d", convID))
	}
	return prev, false, nil
}

// MarkRead implements store.Store; the mark never moves backwards.
func (s *Store) MarkRead(ctx context.Context, id, convID, messageID int64) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	tag, err := s.primary.Exec(ctx, `
		INSERT INTO conversation_reads (conversation_id, user_id, last_read_message_id)
		SELECT m.conversation_id, $2, m.id FROM messages m
		WHERE m.id = $3 AND m.conversation_id = $1 AND m.deleted_at IS NULL AND `+participantSQL[len("SELECT "):]+`
		ON CONFLICT (conversation_id, user_id) DO UPDATE
		SET last_read_message_id = GREATEST(conversation_reads.last_read_message_id, EXCLUDED.last_read_message_id)`,
		convID, id, messageID)
	if err != nil {
		return fmt.Errorf("postgis: mark read %d in %d: %w", messageID, convID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgis: mark read %d in %d: %w", messageID, convID, store.ErrNotFound)
	}
	return nil
}
