package postgis

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

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
	s.reads.wrote(ctx, writeKey{'p', id})
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

// GetProfile implements store.Store; it reads from the replica when
// configured (see replicaRouter: fallback, read your writes).
func (s *Store) GetProfile(ctx context.Context, id int64) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var p store.Profile
	err := s.reads.read(ctx, writeKey{'p', id}, func(db *pgxpool.Pool) (err error) {
		p, err = scanProfile(db.QueryRow(ctx, `SELECT `+profileCols+` FROM users WHERE id = $1`, id))
		return err
	})
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
	p, ok, err := s.updateProfileRow(ctx, `
		UPDATE users SET name = $2, age = $3, gender = $4, bio = $5, photos = $6, is_active = $7,
		       version = version + 1, updated_at = now()
		WHERE id = $1 AND ($8::bigint = 0 OR version = $8::bigint)`, id, u.Name, u.Age, u.Gender, u.Bio, photos, u.Active, ifVersion)
	switch {
	case err != nil:
		return store.Profile{}, fmt.Errorf("postgis: update profile %d: %w", id, err)
	case ok:
		return p, nil
	}
	return store.Profile{}, noRowError(ctx, s.primary, fmt.Sprintf("update profile %d", id), id,
		fmt.Errorf("postgis: update profile %d at version %d: %w", id, ifVersion, store.ErrPreconditionFailed))
}

// updateProfileRow runs update (an UPDATE of one users row, without its
// RETURNING) and returns the profile it wrote; ok is false when it matched
// no row. The user's cell leaves the cell cache: the cached cells hold age,
// gender, activity, uploads and version for suggestions.
func (s *Store) updateProfileRow(ctx context.Context, update string, args ...any) (p store.Profile, ok bool, err error) {
	var cell *string
	err = s.primary.QueryRow(ctx, update+` RETURNING `+profileCols+`, cell`, args...).
		Scan(&p.ID, &p.Name, &p.Age, &p.Gender, &p.Bio, &p.Photos, &p.Uploads, &p.Active, &p.Version, &cell)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Profile{}, false, nil
	}
	if err != nil {
		return store.Profile{}, false, err
	}
	fillSlices(&p)
	s.reads.wrote(ctx, writeKey{'p', p.ID})
	if cell != nil {
		s.invalidateCells(*cell)
	}
	return p, true, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// noRowError explains a write of user id's row that matched none (what
// names the write): the user does not exist (store.ErrNotFound), or else
// otherwise.
func noRowError(ctx context.Context, q querier, what string, id int64, otherwise error) error {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("postgis: %s: %w", what, err)
	}
	if !exists {
		return fmt.Errorf("postgis: %s: %w", what, store.ErrNotFound)
	}
	return otherwise
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
