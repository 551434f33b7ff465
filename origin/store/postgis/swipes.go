package postgis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

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
		h, err := lockHeads(ctx, tx, lockHeadsByID, []int64{lo, hi})
		if err != nil {
			return err
		}
		res.Events, err = appendEvents(ctx, tx, h, store.MatchEvents(m))
		return err
	})
	s.updateUserState(ctx, id, err == nil, func(u *userState) { u.exclude(target) })
	if err != nil {
		return store.SwipeResult{}, fmt.Errorf("postgis: swipe %d->%d: %w", id, target, err)
	}
	if res.Created && res.Match != nil { // a new match: its conversation is new
		s.reads.wrote(ctx, writeKey{'c', res.Match.ConversationID})
	}
	return res, nil
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

// endMatchSQL ends the live match the condition (on m) selects and
// returns it with its conversation. %s: the condition.
const endMatchSQL = `
	UPDATE matches m SET unmatched_at = now()
	FROM conversations c
	WHERE c.match_id = m.id AND m.unmatched_at IS NULL AND %s
	RETURNING m.id, m.user_a, m.user_b, c.id, m.created_at`

// endMatch ends the live match cond selects, if any, in tx.
func endMatch(ctx context.Context, tx pgx.Tx, cond string, args ...any) (store.Match, bool, error) {
	var m store.Match
	err := tx.QueryRow(ctx, fmt.Sprintf(endMatchSQL, cond), args...).Scan(&m.ID, &m.UserA, &m.UserB, &m.ConversationID, &m.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Match{}, false, nil
	case err != nil:
		return store.Match{}, false, fmt.Errorf("end match: %w", err)
	}
	return m, true, nil
}

// appendUnmatch appends the unmatch events of the match tx just ended.
func appendUnmatch(ctx context.Context, tx pgx.Tx, m store.Match) ([]store.Event, error) {
	h, err := lockHeads(ctx, tx, lockHeadsByID, []int64{m.UserA, m.UserB})
	if err != nil {
		return nil, err
	}
	return appendEvents(ctx, tx, h, store.UnmatchEvents(m))
}

// Unmatch implements store.Store.
func (s *Store) Unmatch(ctx context.Context, id, matchID int64) (store.Match, []store.Event, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var m store.Match
	var evs []store.Event
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		var ended bool
		var err error
		m, ended, err = endMatch(ctx, tx, `m.id = $2 AND (m.user_a = $1 OR m.user_b = $1)`, id, matchID)
		if err != nil {
			return err
		}
		if !ended {
			return store.ErrNotFound
		}
		evs, err = appendUnmatch(ctx, tx, m)
		return err
	})
	if err != nil {
		return store.Match{}, nil, fmt.Errorf("postgis: unmatch %d: %w", matchID, err)
	}
	s.reads.wrote(ctx, writeKey{'c', m.ConversationID})
	m.PeerID = m.Peer(id)
	return m, evs, nil
}
