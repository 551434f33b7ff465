package postgis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

const (
	lockUserSQL  = `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`
	putDeviceSQL = `
INSERT INTO push_devices (platform, token, user_id, app_id, locale, previews, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
ON CONFLICT (platform, token) DO UPDATE
SET user_id = EXCLUDED.user_id, app_id = EXCLUDED.app_id, locale = EXCLUDED.locale,
    previews = EXCLUDED.previews, updated_at = EXCLUDED.updated_at
RETURNING (xmax = 0)`
	trimDevicesSQL = `
DELETE FROM push_devices d
WHERE d.user_id = $1 AND (d.platform, d.token) NOT IN (
    SELECT platform, token FROM push_devices WHERE user_id = $1
    ORDER BY updated_at DESC, platform, token LIMIT $2)`
	devicesSQL = `
SELECT platform, token, app_id, locale, previews, updated_at FROM push_devices
WHERE user_id = $1 ORDER BY updated_at DESC, platform, token`
	devicesOfSQL = `
SELECT user_id, platform, token, app_id, locale, previews, updated_at FROM push_devices
WHERE user_id = ANY($1::bigint[]) ORDER BY user_id, updated_at DESC, platform, token`
	readMarkSQL = `
SELECT last_read_message_id FROM conversation_reads WHERE conversation_id = $1 AND user_id = $2`
)

// PutDevice implements store.DeviceStore.
func (s *Store) PutDevice(ctx context.Context, user int64, d store.Device) (bool, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var created bool
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, lockUserSQL, user).Scan(&one); err != nil {
			return notFound(err, "lock user")
		}
		if err := tx.QueryRow(ctx, putDeviceSQL, string(d.Platform), d.Token, user, d.AppID, d.Locale, d.Previews).Scan(&created); err != nil {
			return fmt.Errorf("upsert device: %w", err)
		}
		if _, err := tx.Exec(ctx, trimDevicesSQL, user, store.MaxDevicesPerUser); err != nil {
			return fmt.Errorf("trim devices: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgis: put device of %d: %w", user, err)
	}
	return created, nil
}

// DeleteDevice implements store.DeviceStore.
func (s *Store) DeleteDevice(ctx context.Context, user int64, token string) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	tag, err := s.primary.Exec(ctx, `DELETE FROM push_devices WHERE user_id = $1 AND token = $2`, user, token)
	if err != nil {
		return fmt.Errorf("postgis: delete device of %d: %w", user, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgis: delete device of %d: %w", user, store.ErrNotFound)
	}
	return nil
}

// Devices implements store.DeviceStore. It reads the primary: a device
// registered a moment ago gets the next notification.
func (s *Store) Devices(ctx context.Context, user int64) ([]store.Device, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, devicesSQL, user)
	if err != nil {
		return nil, fmt.Errorf("postgis: devices of %d: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Device, error) {
		d := store.Device{UserID: user}
		var platform string
		err := r.Scan(&platform, &d.Token, &d.AppID, &d.Locale, &d.Previews, &d.UpdatedAt)
		d.Platform = store.Platform(platform)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: devices of %d: %w", user, err)
	}
	return out, nil
}

// DevicesOf implements store.DeviceStore: one statement for all the
// users, on the primary like Devices.
func (s *Store) DevicesOf(ctx context.Context, users []int64) (map[int64][]store.Device, error) {
	out := make(map[int64][]store.Device)
	if len(users) == 0 {
		return out, nil
	}
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, devicesOfSQL, users)
	if err != nil {
		return nil, fmt.Errorf("postgis: devices of %d users: %w", len(users), err)
	}
	var d store.Device
	var platform string
	_, err = pgx.ForEachRow(rows, []any{&d.UserID, &platform, &d.Token, &d.AppID, &d.Locale, &d.Previews, &d.UpdatedAt}, func() error {
		d.Platform = store.Platform(platform)
		out[d.UserID] = append(out[d.UserID], d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: devices of %d users: %w", len(users), err)
	}
	return out, nil
}

// RemoveDeadDevice implements store.DeviceStore.
func (s *Store) RemoveDeadDevice(ctx context.Context, platform store.Platform, token string) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	if _, err := s.primary.Exec(ctx, `DELETE FROM push_devices WHERE platform = $1 AND token = $2`, string(platform), token); err != nil {
		return fmt.Errorf("postgis: remove dead %s device: %w", platform, err)
	}
	return nil
}

// ReadMark implements store.DeviceStore, on the primary (a mark set a
// moment ago must stop the notification).
func (s *Store) ReadMark(ctx context.Context, user, convID int64) (int64, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var id int64
	err := s.primary.QueryRow(ctx, readMarkSQL, convID, user).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgis: read mark of %d in %d: %w", user, convID, err)
	}
	return id, nil
}
