package postgis

import (
	"context"
	"fmt"

	"github.com/spark-edge/spark/origin/store"
)

// AddPhoto implements store.Store: one UPDATE checks the count and the
// name under the row lock, so concurrent uploads cannot pass the limit.
func (s *Store) AddPhoto(ctx context.Context, id int64, name string, max int) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	p, ok, err := s.updateProfileRow(ctx, `
		UPDATE users SET uploads = array_append(uploads, $2::text), version = version + 1, updated_at = now()
		WHERE id = $1 AND cardinality(uploads) < $3 AND NOT ($2::text = ANY (uploads))`, id, name, max)
	switch {
	case err != nil:
		return store.Profile{}, fmt.Errorf("postgis: add photo to %d: %w", id, err)
	case ok:
		return p, nil
	}
	return store.Profile{}, noRowError(ctx, s.primary, fmt.Sprintf("add photo to %d", id), id,
		fmt.Errorf("postgis: add photo %q to %d: limit %d reached or name taken: %w", name, id, max, store.ErrConflict))
}

// RemovePhoto implements store.Store.
func (s *Store) RemovePhoto(ctx context.Context, id int64, name string) (store.Profile, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	p, ok, err := s.updateProfileRow(ctx, `
		UPDATE users SET uploads = array_remove(uploads, $2::text), version = version + 1, updated_at = now()
		WHERE id = $1 AND $2::text = ANY (uploads)`, id, name)
	switch {
	case err != nil:
		return store.Profile{}, fmt.Errorf("postgis: remove photo %q of %d: %w", name, id, err)
	case !ok:
		return store.Profile{}, fmt.Errorf("postgis: remove photo %q of %d: %w", name, id, store.ErrNotFound)
	}
	return p, nil
}
