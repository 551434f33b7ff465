package postgis

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
)

// msgKey is what makes a send idempotent.
type msgKey struct {
	conv, sender int64
	clientID     string
}

func keyOf(d store.MessageDraft) msgKey { return msgKey{d.ConversationID, d.SenderID, d.ClientMsgID} }

// liveConversationsSQL: the conversations of $1 whose match is live, with
// their participants.
const liveConversationsSQL = `
	SELECT c.id, c.user_a, c.user_b FROM conversations c
	JOIN matches m ON m.id = c.match_id AND m.unmatched_at IS NULL
	WHERE c.id = ANY($1::bigint[])`

// storedMessagesSQL: the messages already stored under the drafts' keys
// (the retries).
const storedMessagesSQL = `
	SELECT m.id, m.conversation_id, m.conv_seq, m.sender_id, m.body, m.client_msg_id, m.created_at
	FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(conv, sender, cid)
	JOIN messages m ON m.conversation_id = k.conv AND m.sender_id = k.sender AND m.client_msg_id = k.cid`

// insertMessagesSQL takes each conversation's next conv_seqs from its
// counter and inserts the new messages, numbered in the order given (ord:
// 1, 2 … per conversation). Ids come from the sequence in (conversation,
// ord) order and created_at is the statement's start, after the heads were
// locked, so per conversation id, created_at and conv_seq all follow commit
// order.
const insertMessagesSQL = `
	WITH n AS (
	    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS n(conv, sender, body, cid, ord)
	), bump AS (
	    UPDATE conversations c SET last_conv_seq = c.last_conv_seq + k.cnt
	    FROM (SELECT conv, count(*) AS cnt FROM n GROUP BY conv) k
	    WHERE c.id = k.conv
	    RETURNING c.id, c.last_conv_seq - k.cnt AS base
	)
	INSERT INTO messages (conversation_id, sender_id, body, client_msg_id, conv_seq, created_at)
	SELECT n.conv, n.sender, n.body, n.cid, b.base + n.ord, statement_timestamp()
	FROM n JOIN bump b ON b.id = n.conv
	ORDER BY n.conv, n.ord
	RETURNING id, conversation_id, conv_seq, sender_id, client_msg_id, created_at`

// SendMessages implements store.Store: the batch in one transaction of
// five round trips whatever its size (lock the participants' heads; read
// live conversations and retries; insert the messages; append the events;
// commit). A draft refused (not a participant, the match ended) fails
// alone inside the batch; if the transaction fails as a whole, each draft
// is tried again in a transaction of its own, so a bad message fails alone.
func (s *Store) SendMessages(ctx context.Context, drafts []store.MessageDraft) []store.SendResult {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	out := make([]store.SendResult, len(drafts))
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error { return sendBatch(ctx, tx, drafts, out) })
	if err == nil {
		return out
	}
	if len(drafts) > 1 && ctx.Err() == nil {
		for i, d := range drafts {
			out[i] = s.SendMessages(ctx, []store.MessageDraft{d})[0]
		}
		return out
	}
	for i, d := range drafts {
		out[i] = store.SendResult{Err: fmt.Errorf("postgis: send message in %d: %w", d.ConversationID, err)}
	}
	return out
}

// sendBatch stores drafts in tx, filling out.
func sendBatch(ctx context.Context, tx pgx.Tx, drafts []store.MessageDraft, out []store.SendResult) error {
	convs := make([]int64, 0, len(drafts))
	for _, d := range drafts {
		convs = append(convs, d.ConversationID)
	}
	slices.Sort(convs)
	convs = slices.Compact(convs)
	h, err := lockHeads(ctx, tx, lockHeadsOfConversations, convs)
	if err != nil {
		return err
	}
	live, stored, err := readSendState(ctx, tx, convs, drafts)
	if err != nil {
		return err
	}
	// Classify: refused, a retry of a stored message, a retry of a draft
	// earlier in this batch, or new (numbered per conversation).
	var fresh []int
	first := make(map[msgKey]int, len(drafts))
	ords := make([]int64, len(drafts))
	next := make(map[int64]int64, len(convs))
	for i, d := range drafts {
		out[i] = store.SendResult{}
		p, ok := live[d.ConversationID]
		if !ok || (p[0] != d.SenderID && p[1] != d.SenderID) {
			out[i].Err = fmt.Errorf("postgis: send message in conversation %d: %w", d.ConversationID, store.ErrNotFound)
			continue
		}
		k := keyOf(d)
		if m, ok := stored[k]; ok {
			out[i].Message = m
			continue
		}
		if _, ok := first[k]; ok {
			continue // resolved once the first is inserted
		}
		first[k] = i
		next[d.ConversationID]++
		ords[i] = next[d.ConversationID]
		fresh = append(fresh, i)
	}
	if len(fresh) == 0 {
		return nil
	}
	inserted, err := insertMessages(ctx, tx, drafts, fresh, ords)
	if err != nil {
		return err
	}
	var ps []store.PendingEvent
	for _, i := range fresh {
		m := inserted[keyOf(drafts[i])]
		out[i] = store.SendResult{Message: m, Created: true}
		p := live[m.ConversationID]
		ps = append(ps, store.MessageEvents(m, p[0]+p[1]-m.SenderID)...)
	}
	for i, d := range drafts {
		if j, ok := first[keyOf(d)]; ok && j != i && out[i].Err == nil {
			out[i] = store.SendResult{Message: out[j].Message}
		}
	}
	evs, err := appendEvents(ctx, tx, h, ps)
	if err != nil {
		return err
	}
	for n, i := range fresh { // two events per message, in fresh order
		out[i].Events = evs[2*n : 2*n+2 : 2*n+2]
	}
	return nil
}

// readSendState reads, in one round trip, the live conversations among
// convs (id -> participants) and the messages already stored under the
// drafts' keys.
func readSendState(ctx context.Context, tx pgx.Tx, convs []int64, drafts []store.MessageDraft) (map[int64][2]int64, map[msgKey]store.Message, error) {
	cs, senders, cids := make([]int64, len(drafts)), make([]int64, len(drafts)), make([]string, len(drafts))
	for i, d := range drafts {
		cs[i], senders[i], cids[i] = d.ConversationID, d.SenderID, d.ClientMsgID
	}
	b := &pgx.Batch{}
	b.Queue(liveConversationsSQL, convs)
	b.Queue(storedMessagesSQL, cs, senders, cids)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	live := make(map[int64][2]int64, len(convs))
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read conversations: %w", err)
	}
	var id, a, bb int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &a, &bb}, func() error {
		live[id] = [2]int64{a, bb}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("read conversations: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read stored messages: %w", err)
	}
	stored := make(map[msgKey]store.Message)
	var m store.Message
	if _, err := pgx.ForEachRow(rows, []any{&m.ID, &m.ConversationID, &m.ConvSeq, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt}, func() error {
		stored[msgKey{m.ConversationID, m.SenderID, m.ClientMsgID}] = m
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("read stored messages: %w", err)
	}
	return live, stored, br.Close()
}

// insertMessages inserts the drafts listed in fresh, numbered by ords, and
// returns them stored, by key.
func insertMessages(ctx context.Context, tx pgx.Tx, drafts []store.MessageDraft, fresh []int, ords []int64) (map[msgKey]store.Message, error) {
	n := len(fresh)
	convs, senders, bodies, cids, ordv := make([]int64, n), make([]int64, n), make([]string, n), make([]string, n), make([]int64, n)
	for j, i := range fresh {
		d := drafts[i]
		convs[j], senders[j], bodies[j], cids[j], ordv[j] = d.ConversationID, d.SenderID, d.Body, d.ClientMsgID, ords[i]
	}
	rows, err := tx.Query(ctx, insertMessagesSQL, convs, senders, bodies, cids, ordv)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	out := make(map[msgKey]store.Message, n)
	var m store.Message
	if _, err := pgx.ForEachRow(rows, []any{&m.ID, &m.ConversationID, &m.ConvSeq, &m.SenderID, &m.ClientMsgID, &m.CreatedAt}, func() error {
		out[msgKey{m.ConversationID, m.SenderID, m.ClientMsgID}] = m
		return nil
	}); err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("insert messages: %d of %d stored", len(out), n)
	}
	for _, i := range fresh {
		k := keyOf(drafts[i])
		m := out[k]
		m.Body = drafts[i].Body
		out[k] = m
	}
	return out, nil
}
