package postgis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin/store"
)

// ListConversations implements store.Store. Unread counts are count(*) on the
// partial messages_unread index (design/postgis.md: as cheap as a counter
// table, without a trigger on every insert).
func (s *Store) ListConversations(ctx context.Context, id int64) ([]store.ConversationSummary, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, `
		SELECT c.id, c.match_id, CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END, c.created_at,
		       lm.id, lm.conv_seq, lm.sender_id, lm.body, lm.client_msg_id, lm.created_at,
		       (SELECT count(*) FROM messages um
		         WHERE um.conversation_id = c.id AND um.deleted_at IS NULL AND um.sender_id <> $1
		           AND um.id > COALESCE(r.last_read_message_id, 0))
		FROM conversations c
		JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
		LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = $1
		LEFT JOIN LATERAL (
		    SELECT m.id, m.conv_seq, m.sender_id, m.body, m.client_msg_id, m.created_at FROM messages m
		    WHERE m.conversation_id = c.id AND m.deleted_at IS NULL
		    ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lm ON true
		WHERE c.user_a = $1 OR c.user_b = $1
		ORDER BY COALESCE(lm.created_at, c.created_at) DESC, c.id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("postgis: list conversations %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ConversationSummary, error) {
		var c store.ConversationSummary
		var mid, convSeq, sender *int64
		var body, cid *string
		var at *time.Time
		err := r.Scan(&c.ID, &c.MatchID, &c.PeerID, &c.CreatedAt, &mid, &convSeq, &sender, &body, &cid, &at, &c.UnreadCount)
		if mid != nil {
			c.LastMessage = &store.Message{ID: *mid, ConversationID: c.ID, ConvSeq: *convSeq, SenderID: *sender, Body: *body,
				ClientMsgID: *cid, CreatedAt: *at}
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
	SELECT m.id, COALESCE(m.conv_seq, 0), COALESCE(m.sender_id, 0), COALESCE(m.body, ''), COALESCE(m.client_msg_id, ''),
	       COALESCE(m.created_at, 'epoch')
	FROM conversations c
	JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
	LEFT JOIN LATERAL (
		SELECT id, conv_seq, sender_id, body, client_msg_id, created_at FROM messages
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
// from the replica when configured (see replicaRouter), with the participant
// check in the same statement.
func (s *Store) ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]store.Message, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var out []store.Message
	participant := false
	err := s.reads.read(ctx, writeKey{'c', convID}, func(db *pgxpool.Pool) error {
		var rows pgx.Rows
		var err error
		if before > 0 {
			rows, err = db.Query(ctx, historyBeforeSQL, convID, id, limit, before)
		} else {
			rows, err = db.Query(ctx, historyFirstSQL, convID, id, limit)
		}
		if err != nil {
			return err
		}
		out, participant = make([]store.Message, 0, limit), false
		var msgID *int64
		var m store.Message
		_, err = pgx.ForEachRow(rows, []any{&msgID, &m.ConvSeq, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt}, func() error {
			participant = true
			if msgID != nil {
				m.ID, m.ConversationID = *msgID, convID
				out = append(out, m)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: list messages %d: %w", convID, err)
	}
	if !participant {
		return nil, fmt.Errorf("postgis: conversation %d: %w", convID, store.ErrNotFound)
	}
	return out, nil
}

// markReadSQL moves the user's read mark in a live conversation forward to
// message $3 (never back): no row when the message or the participation
// is not there, else one row with the peer and whether the mark moved.
const markReadSQL = `
	WITH target AS (
	    SELECT m.id, CASE WHEN c.user_a = $2 THEN c.user_b ELSE c.user_a END AS peer
	    FROM messages m
	    JOIN conversations c ON c.id = m.conversation_id AND (c.user_a = $2 OR c.user_b = $2)
	    JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
	    WHERE m.id = $3 AND m.conversation_id = $1 AND m.deleted_at IS NULL
	), moved AS (
	    INSERT INTO conversation_reads (conversation_id, user_id, last_read_message_id)
	    SELECT $1, $2, id FROM target
	    ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_message_id = EXCLUDED.last_read_message_id
	    WHERE conversation_reads.last_read_message_id < EXCLUDED.last_read_message_id
	    RETURNING 1
	)
	SELECT peer, EXISTS (SELECT 1 FROM moved) FROM target`

// MarkRead implements store.Store; the mark never moves backwards, and
// only a move appends read events.
func (s *Store) MarkRead(ctx context.Context, id, convID, messageID int64) ([]store.Event, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var evs []store.Event
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		evs = nil
		h, err := lockHeads(ctx, tx, lockHeadsOfConversations, []int64{convID})
		if err != nil {
			return err
		}
		var peer int64
		var moved bool
		err = tx.QueryRow(ctx, markReadSQL, convID, id, messageID).Scan(&peer, &moved)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("message not in a conversation of the user: %w", store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("move read mark: %w", err)
		}
		if moved {
			evs, err = appendEvents(ctx, tx, h, store.ReadEvents(convID, id, peer, messageID))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: mark read %d in %d: %w", messageID, convID, err)
	}
	return evs, nil
}
