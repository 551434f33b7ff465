package postgis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

// Lock order. A write that appends events takes its own rows first (the
// swipe's pair lock, the match it ends, the block it inserts), then the
// event heads of the users concerned in ascending user id (lockHeads),
// then only rows nobody locks before heads (a conversation's message
// counter, a read mark). Every writer follows it, so concurrent writes
// wait for one another but never deadlock.

// heads maps a user id to their newest event seq, for users whose head
// the transaction holds locked.
type heads map[int64]int64

// lockHeadsSQL locks, in ascending user id, the heads of the users the
// condition (on h.user_id) selects.
const lockHeadsSQL = `SELECT h.user_id, h.last_seq FROM event_heads h WHERE %s ORDER BY h.user_id FOR UPDATE OF h`

var (
	lockHeadsByID = fmt.Sprintf(lockHeadsSQL, `h.user_id = ANY($1::bigint[])`)
	// lockHeadsOfConversations: both participants of each conversation
	// in $1. The participants are read first (an init plan) and the heads
	// then looked up by key: as a join (IN (SELECT …)) PostgreSQL hashed
	// the few participants and scanned every head, at every message batch.
	lockHeadsOfConversations = fmt.Sprintf(lockHeadsSQL, `h.user_id = ANY(ARRAY(
		SELECT unnest(ARRAY[c.user_a, c.user_b]) FROM conversations c WHERE c.id = ANY($1::bigint[])))`)
)

// lockHeads runs one of the lockHeads statements and returns the heads it
// locked.
func lockHeads(ctx context.Context, tx pgx.Tx, sql string, args ...any) (heads, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("lock event heads: %w", err)
	}
	h := make(heads, 2)
	var user, last int64
	if _, err := pgx.ForEachRow(rows, []any{&user, &last}, func() error {
		h[user] = last
		return nil
	}); err != nil {
		return nil, fmt.Errorf("lock event heads: %w", err)
	}
	return h, nil
}

// appendEventsSQL inserts events ($1 users, $2 seqs, $3 kinds, $4 at, $5
// data) and advances the heads ($6 users to $7 seqs) in one statement. %s:
// more common table expressions run by the same statement (each ending
// with a comma), using parameters from $8.
const appendEventsSQL = `
	WITH %s ins AS (
	    INSERT INTO events (user_id, seq, kind, at, data)
	    SELECT u, s, k, $4::timestamptz, d::json FROM unnest($1::bigint[], $2::bigint[], $3::text[], $5::text[]) AS e(u, s, k, d))
	UPDATE event_heads h SET last_seq = v.s
	FROM unnest($6::bigint[], $7::bigint[]) AS v(u, s)
	WHERE h.user_id = v.u AND h.last_seq < v.s`

// sequenceEvents numbers ps from the locked heads h (advancing them) at
// time at and returns them with appendEventsSQL's seven arguments. Every
// recipient's head must be in h.
func sequenceEvents(h heads, ps []store.PendingEvent, at time.Time) ([]store.Event, []any, error) {
	for _, p := range ps {
		if _, ok := h[p.UserID]; !ok {
			return nil, nil, fmt.Errorf("append events: head of user %d not locked", p.UserID)
		}
	}
	evs := store.Sequence(ps, h, store.EventTime(at))
	users, seqs, kinds, data := make([]int64, len(evs)), make([]int64, len(evs)), make([]string, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		users[i], seqs[i], kinds[i], data[i] = e.UserID, e.Seq, string(e.Kind), string(e.Data)
	}
	headUsers, headSeqs := make([]int64, 0, len(h)), make([]int64, 0, len(h))
	for u, s := range h {
		headUsers, headSeqs = append(headUsers, u), append(headSeqs, s)
	}
	return evs, []any{users, seqs, kinds, store.EventTime(at), data, headUsers, headSeqs}, nil
}

var appendEventsOnly = fmt.Sprintf(appendEventsSQL, "")

// appendEvents numbers ps from the locked heads h, inserts them and stores
// the new heads, in one statement of the caller's transaction.
func appendEvents(ctx context.Context, tx pgx.Tx, h heads, ps []store.PendingEvent) ([]store.Event, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	evs, args, err := sequenceEvents(h, ps, time.Now())
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, appendEventsOnly, args...); err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	return evs, nil
}

// eventsSQL reads the user's head and a page of their log in one statement
// (one snapshot: last_seq is never older than the page): no row when the
// user has no head, one row of NULL events when the page is empty.
const eventsSQL = `
	SELECT h.last_seq, e.seq, e.kind, e.at, e.data
	FROM event_heads h
	LEFT JOIN LATERAL (
	    SELECT seq, kind, at, data FROM events
	    WHERE user_id = h.user_id AND seq > $2 ORDER BY seq LIMIT $3) e ON true
	WHERE h.user_id = $1
	ORDER BY e.seq`

// Events implements store.Store, on the primary: an edge asks right after
// an event was published, which a replica may not have yet. A limit below
// 1 is taken as 1. Kept events are one run of seqs ending at last_seq, so
// the page must start at since+1 unless since is last_seq: otherwise the
// events after since were pruned.
func (s *Store) Events(ctx context.Context, id, since int64, limit int) (store.EventPage, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	limit = max(limit, 1)
	rows, err := s.primary.Query(ctx, eventsSQL, id, since, limit)
	if err != nil {
		return store.EventPage{}, fmt.Errorf("postgis: events of %d: %w", id, err)
	}
	page := store.EventPage{Events: make([]store.Event, 0, min(limit, 64))}
	var seq *int64
	var kind *string
	var at *time.Time
	var data []byte
	if _, err := pgx.ForEachRow(rows, []any{&page.LastSeq, &seq, &kind, &at, &data}, func() error {
		if seq != nil {
			page.Events = append(page.Events, store.Event{UserID: id, Seq: *seq, Kind: store.EventKind(*kind), At: at.UTC(),
				Data: json.RawMessage(append([]byte(nil), data...))})
		}
		return nil
	}); err != nil {
		return store.EventPage{}, fmt.Errorf("postgis: events of %d: %w", id, err)
	}
	if since > page.LastSeq || (since < page.LastSeq && (len(page.Events) == 0 || page.Events[0].Seq != since+1)) {
		return store.EventPage{}, fmt.Errorf("postgis: events of %d: %w", id, &store.GoneError{Since: since, LastSeq: page.LastSeq})
	}
	return page, nil
}

// pruneBatch is how many users one PruneEvents statement handles.
const pruneBatch = 200

// pruneSQL deletes, for up to pruneBatch users (above $3, ascending: a
// keyset walk) with more than $1 events kept and whose oldest kept event
// is older than $2, the prefix of their log that is both beyond their
// newest $1 and older than $2, and records how far it got in
// event_prunes. It locks no head: writers never wait for it.
const pruneSQL = `
	WITH cand AS (
	    SELECT h.user_id, h.last_seq - $1 AS upto, COALESCE(p.pruned_through, 0) AS done
	    FROM event_heads h LEFT JOIN event_prunes p ON p.user_id = h.user_id
	    WHERE h.user_id > $3 AND h.last_seq - COALESCE(p.pruned_through, 0) > $1
	    ORDER BY h.user_id LIMIT $4
	), bound AS (
	    SELECT c.user_id, (SELECT max(e.seq) FROM events e
	                       WHERE e.user_id = c.user_id AND e.seq > c.done AND e.seq <= c.upto AND e.at < $2) AS b
	    FROM cand c
	    WHERE EXISTS (SELECT 1 FROM events e WHERE e.user_id = c.user_id AND e.seq = c.done + 1 AND e.at < $2)
	), del AS (
	    DELETE FROM events e USING bound
	    WHERE bound.b IS NOT NULL AND e.user_id = bound.user_id AND e.seq <= bound.b
	    RETURNING 1
	), moved AS (
	    INSERT INTO event_prunes (user_id, pruned_through) SELECT user_id, b FROM bound WHERE b IS NOT NULL
	    ON CONFLICT (user_id) DO UPDATE SET pruned_through = GREATEST(event_prunes.pruned_through, EXCLUDED.pruned_through)
	)
	SELECT (SELECT count(*) FROM del), (SELECT max(user_id) FROM cand), (SELECT count(*) FROM cand)`

// PruneEvents implements store.Store: a keyset walk over the users with
// more than KeepLast events kept, one statement (and transaction) per
// pruneBatch of them.
func (s *Store) PruneEvents(ctx context.Context, r store.Retention) (int64, error) {
	var total, after int64
	for {
		var deleted, n int64
		var last *int64
		err := func() error {
			ctx, cancel := s.acquireCtx(ctx)
			defer cancel()
			return s.primary.QueryRow(ctx, pruneSQL, r.KeepLast, r.Cutoff(), after, pruneBatch).Scan(&deleted, &last, &n)
		}()
		if err != nil {
			return total, fmt.Errorf("postgis: prune events after user %d: %w", after, err)
		}
		total += deleted
		if last == nil || n < pruneBatch {
			return total, nil
		}
		after = *last
	}
}
