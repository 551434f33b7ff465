package postgis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
		       lm.id, lm.sender_id, lm.body, lm.client_msg_id, lm.created_at,
		       (SELECT count(*) FROM messages um
		         WHERE um.conversation_id = c.id AND um.deleted_at IS NULL AND um.sender_id <> $1
		           AND um.id > COALESCE(r.last_read_message_id, 0))
		FROM conversations c
		JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
		LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = $1
		LEFT JOIN LATERAL (
		    SELECT m.id, m.sender_id, m.body, m.client_msg_id, m.created_at FROM messages m
		    WHERE m.conversation_id = c.id AND m.deleted_at IS NULL
		    ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lm ON true
		WHERE c.user_a = $1 OR c.user_b = $1
		ORDER BY COALESCE(lm.created_at, c.created_at) DESC, c.id DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("postgis: list conversations %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ConversationSummary, error) {
		var c store.ConversationSummary
		var mid, sender *int64
		var body, cid *string
		var at *time.Time
		err := r.Scan(&c.ID, &c.MatchID, &c.PeerID, &c.CreatedAt, &mid, &sender, &body, &cid, &at, &c.UnreadCount)
		if mid != nil {
			c.LastMessage = &store.Message{ID: *mid, ConversationID: c.ID, SenderID: *sender, Body: *body, ClientMsgID: *cid, CreatedAt: *at}
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
	SELECT m.id, COALESCE(m.sender_id, 0), COALESCE(m.body, ''), COALESCE(m.client_msg_id, ''), COALESCE(m.created_at, 'epoch')
	FROM conversations c
	JOIN matches mt ON mt.id = c.match_id AND mt.unmatched_at IS NULL
	LEFT JOIN LATERAL (
		SELECT id, sender_id, body, client_msg_id, created_at FROM messages
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
// from the replica when configured, with the participant check in the same
// statement.
func (s *Store) ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]store.Message, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	if before > 0 {
		rows, err = s.replica.Query(ctx, historyBeforeSQL, convID, id, limit, before)
	} else {
		rows, err = s.replica.Query(ctx, historyFirstSQL, convID, id, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("postgis: list messages %d: %w", convID, err)
	}
	participant := false
	out := make([]store.Message, 0, limit)
	var msgID *int64
	var m store.Message
	_, err = pgx.ForEachRow(rows, []any{&msgID, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt}, func() error {
		participant = true
		if msgID != nil {
			m.ID, m.ConversationID = *msgID, convID
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: list messages %d: %w", convID, err)
	}
	if !participant {
		return nil, fmt.Errorf("postgis: conversation %d: %w", convID, store.ErrNotFound)
	}
	return out, nil
}

func scanMessage(r pgx.CollectableRow) (store.Message, error) {
	var m store.Message
	err := r.Scan(&m.ID, &m.ConversationID, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt)
	return m, err
}

// SendMessage implements store.Store: one statement on the happy path; the
// unique (conversation_id, sender_id, client_msg_id) makes retries idempotent.
func (s *Store) SendMessage(ctx context.Context, id, convID int64, body, clientMsgID string) (store.Message, bool, error) {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	m := store.Message{ConversationID: convID, SenderID: id, Body: body, ClientMsgID: clientMsgID}
	err := s.primary.QueryRow(ctx, `
		INSERT INTO messages (conversation_id, sender_id, body, client_msg_id)
		SELECT $1, $2, $3, $4 WHERE `+participantSQL[len("SELECT "):]+`
		ON CONFLICT (conversation_id, sender_id, client_msg_id) DO NOTHING
		RETURNING id, created_at`, convID, id, body, clientMsgID).Scan(&m.ID, &m.CreatedAt)
	if err == nil {
		return m, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, false, fmt.Errorf("postgis: send message in %d: %w", convID, err)
	}
	rows, err := s.primary.Query(ctx, `
		SELECT id, conversation_id, sender_id, body, client_msg_id, created_at FROM messages
		WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3 AND `+participantSQL[len("SELECT "):],
		convID, id, clientMsgID)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("postgis: send message in %d: %w", convID, err)
	}
	prev, err := pgx.CollectExactlyOneRow(rows, scanMessage)
	if err != nil {
		return store.Message{}, false, notFound(err, fmt.Sprintf("send message in conversation %d", convID))
	}
	return prev, false, nil
}

// MarkRead implements store.Store; the mark never moves backwards.
func (s *Store) MarkRead(ctx context.Context, id, convID, messageID int64) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	tag, err := s.primary.Exec(ctx, `
		INSERT INTO conversation_reads (conversation_id, user_id, last_read_message_id)
		SELECT m.conversation_id, $2, m.id FROM messages m
		WHERE m.id = $3 AND m.conversation_id = $1 AND m.deleted_at IS NULL AND `+participantSQL[len("SELECT "):]+`
		ON CONFLICT (conversation_id, user_id) DO UPDATE
		SET last_read_message_id = GREATEST(conversation_reads.last_read_message_id, EXCLUDED.last_read_message_id)`,
		convID, id, messageID)
	if err != nil {
		return fmt.Errorf("postgis: mark read %d in %d: %w", messageID, convID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgis: mark read %d in %d: %w", messageID, convID, store.ErrNotFound)
	}
	return nil
}
