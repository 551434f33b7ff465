package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

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
