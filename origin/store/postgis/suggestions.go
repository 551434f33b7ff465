package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

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
		return s.exactNearest(ctx, id, u.At, u.Prefs, limit)
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
	return s.exactNearest(ctx, id, store.Point{Lat: *lat, Lng: *lng}, prefs, limit)
}

// exactNearest runs the nearest-first KNN query (no cache).
func (s *Store) exactNearest(ctx context.Context, id int64, at store.Point, p store.Preferences, limit int) ([]store.Candidate, error) {
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
