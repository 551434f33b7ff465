package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, id, target int64) ([]store.Event, error) {
	if id == target {
		return nil, fmt.Errorf("postgis: block self: %w", store.ErrInvalid)
	}
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	lo, hi := pairOf(id, target)
	var evs []store.Event
	var endedConv int64
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		evs, endedConv = nil, 0
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
		m, ended, err := endMatch(ctx, tx, `m.user_a = $1 AND m.user_b = $2`, lo, hi)
		if err != nil || !ended {
			return err
		}
		endedConv = m.ConversationID
		evs, err = appendUnmatch(ctx, tx, m)
		return err
	})
	if err == nil && endedConv != 0 {
		s.reads.wrote(ctx, writeKey{'c', endedConv})
	}
	// Blocks hide both ways: both users' exclusion sets change.
	s.updateUserState(ctx, id, err == nil, func(u *userState) { u.exclude(target) })
	s.updateUserState(ctx, target, err == nil, func(u *userState) { u.exclude(id) })
	if err != nil {
		return nil, fmt.Errorf("postgis: block %d by %d: %w", target, id, err)
	}
	return evs, nil
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
