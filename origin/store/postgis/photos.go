package postgis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/spark-edge/spark/origin/store"
)

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
