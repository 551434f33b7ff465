package postgis

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin/store"
)

// msgKey is what makes a send idempotent.
type msgKey struct {
	conv, sender int64
	clientID     string
}

func keyOf(d store.MessageDraft) msgKey { return msgKey{d.ConversationID, d.SenderID, d.ClientMsgID} }

// liveConversationsSQL: the conversations of $1 whose match is live, with
// their participants and message counter.
const liveConversationsSQL = `
	SELECT c.id, c.user_a, c.user_b, c.last_conv_seq FROM conversations c
	JOIN matches m ON m.id = c.match_id AND m.unmatched_at IS NULL
	WHERE c.id = ANY($1::bigint[])`

// storedMessagesSQL: the messages already stored under the drafts' keys
// (the retries).
const storedMessagesSQL = `
	SELECT m.id, m.conversation_id, m.conv_seq, m.sender_id, m.body, m.client_msg_id, m.created_at
	FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(conv, sender, cid)
	JOIN messages m ON m.conversation_id = k.conv AND m.sender_id = k.sender AND m.client_msg_id = k.cid`

// idsAndClockSQL takes $1 message ids from the sequence, ascending, and
// the database's clock: run after the heads are locked, so per
// conversation ids and times follow commit order.
const idsAndClockSQL = `SELECT array_agg(id ORDER BY id), clock_timestamp()
	FROM (SELECT nextval('messages_id_seq') AS id FROM generate_series(1, $1)) n`

// storeSendSQL inserts the new messages ($8…$14), sets the conversations'
// counters ($15 ids to $16) and appends the events (appendEventsSQL's $1…$7)
// in one statement.
var storeSendSQL = fmt.Sprintf(appendEventsSQL, `
	msgs AS (
	    INSERT INTO messages (id, conversation_id, sender_id, body, client_msg_id, conv_seq, created_at)
	    SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::bigint[], $14::timestamptz[])),
	counters AS (
	    UPDATE conversations c SET last_conv_seq = v.s FROM unnest($15::bigint[], $16::bigint[]) AS v(id, s) WHERE c.id = v.id),`)

// sendState is what a batch reads once the heads are locked.
type sendState struct {
	heads  heads
	live   map[int64]liveConversation
	stored map[msgKey]store.Message
	ids    []int64   // fresh message ids, ascending
	now    time.Time // the database's clock
}

// liveConversation is a conversation whose match is live.
type liveConversation struct {
	a, b, lastSeq int64
}

// SendMessages implements store.Store: the batch in one transaction of two
// round trips whatever its size. The first, pipelined: begin, lock the
// participants' heads, read the live conversations with their counters
// and the messages the drafts retry, take ids and the clock. Then the
// messages, counters and events are built here and the second stores them
// all in one statement and commits. A draft refused (not a participant,
// the match ended) fails alone inside the batch; if the transaction fails
// as a whole, each draft is tried again in a transaction of its own, so a
// bad message fails alone.
func (s *Store) SendMessages(ctx context.Context, drafts []store.MessageDraft) []store.SendResult {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	out := make([]store.SendResult, len(drafts))
	err := s.sendBatch(ctx, drafts, out)
	if err == nil {
		keys := make([]writeKey, 0, len(drafts))
		for i, d := range drafts {
			if out[i].Err == nil {
				keys = append(keys, writeKey{'c', d.ConversationID})
			}
		}
		s.reads.wrote(ctx, keys...)
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

// sendBatch stores drafts in one transaction, filling out. BEGIN and
// COMMIT travel in the pipelines, so the transaction is managed here on one
// pooled connection; after an error it is rolled back, so the pool keeps
// the connection (it drops one released inside a transaction).
func (s *Store) sendBatch(ctx context.Context, drafts []store.MessageDraft, out []store.SendResult) (err error) {
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()
	defer func() {
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	st, err := readSendState(ctx, conn, drafts)
	if err != nil {
		return err
	}
	msgs, fresh := classify(drafts, st, out)
	if len(fresh) == 0 {
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	var ps []store.PendingEvent
	for _, m := range msgs {
		c := st.live[m.ConversationID]
		ps = append(ps, store.MessageEvents(m, c.a+c.b-m.SenderID)...)
	}
	evs, args, err := sequenceEvents(st.heads, ps, st.now)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(storeSendSQL, append(args, sendArgs(msgs)...)...)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store messages: %w", err)
	}
	for n, i := range fresh { // two events per message, in fresh order
		out[i] = store.SendResult{Message: msgs[n], Created: true, Events: evs[2*n : 2*n+2 : 2*n+2]}
	}
	byKey := make(map[msgKey]store.Message, len(msgs))
	for _, m := range msgs {
		byKey[msgKeyOf(m)] = m
	}
	for i, d := range drafts { // retries of a draft earlier in the batch
		if out[i].Err == nil && out[i].Message.ID == 0 {
			out[i].Message = byKey[keyOf(d)]
		}
	}
	return nil
}

func msgKeyOf(m store.Message) msgKey { return msgKey{m.ConversationID, m.SenderID, m.ClientMsgID} }

// readSendState begins the transaction, locks the heads of the drafts'
// conversations and reads what the batch needs, in one round trip.
func readSendState(ctx context.Context, conn *pgxpool.Conn, drafts []store.MessageDraft) (sendState, error) {
	n := len(drafts)
	convs, cs, senders, cids := make([]int64, 0, n), make([]int64, n), make([]int64, n), make([]string, n)
	for i, d := range drafts {
		convs = append(convs, d.ConversationID)
		cs[i], senders[i], cids[i] = d.ConversationID, d.SenderID, d.ClientMsgID
	}
	slices.Sort(convs)
	convs = slices.Compact(convs)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(lockHeadsOfConversations, convs)
	b.Queue(liveConversationsSQL, convs)
	b.Queue(storedMessagesSQL, cs, senders, cids)
	b.Queue(idsAndClockSQL, n)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	st := sendState{heads: heads{}, live: make(map[int64]liveConversation, len(convs)), stored: map[msgKey]store.Message{}}
	if _, err := br.Exec(); err != nil {
		return st, fmt.Errorf("begin: %w", err)
	}
	var id, a, bb, last int64
	if err := readRows(br, "lock event heads", []any{&id, &last}, func() { st.heads[id] = last }); err != nil {
		return st, err
	}
	if err := readRows(br, "read conversations", []any{&id, &a, &bb, &last}, func() { st.live[id] = liveConversation{a, bb, last} }); err != nil {
		return st, err
	}
	var m store.Message
	if err := readRows(br, "read stored messages", []any{&m.ID, &m.ConversationID, &m.ConvSeq, &m.SenderID, &m.Body, &m.ClientMsgID, &m.CreatedAt},
		func() { st.stored[msgKeyOf(m)] = m }); err != nil {
		return st, err
	}
	if err := br.QueryRow().Scan(&st.ids, &st.now); err != nil {
		return st, fmt.Errorf("take message ids: %w", err)
	}
	return st, br.Close()
}

// readRows reads the batch's next result, calling each for every row
// scanned into dest.
func readRows(br pgx.BatchResults, what string, dest []any, each func()) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := pgx.ForEachRow(rows, dest, func() error { each(); return nil }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// classify sorts the drafts: refused (out[i].Err), a retry of a stored
// message (out[i].Message), a retry of a draft earlier in the batch (left
// for later), or new: returned in msgs, numbered per conversation in draft
// order with ids in the same order, with their indexes in fresh.
func classify(drafts []store.MessageDraft, st sendState, out []store.SendResult) (msgs []store.Message, fresh []int) {
	seen := make(map[msgKey]bool, len(drafts))
	next := make(map[int64]int64, len(st.live))
	for i, d := range drafts {
		out[i] = store.SendResult{}
		c, ok := st.live[d.ConversationID]
		if !ok || (c.a != d.SenderID && c.b != d.SenderID) {
			out[i].Err = fmt.Errorf("postgis: send message in conversation %d: %w", d.ConversationID, store.ErrNotFound)
			continue
		}
		k := keyOf(d)
		if m, ok := st.stored[k]; ok {
			out[i].Message = m
			continue
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := next[d.ConversationID]; !ok {
			next[d.ConversationID] = c.lastSeq
		}
		next[d.ConversationID]++
		msgs = append(msgs, store.Message{ID: st.ids[len(msgs)], ConversationID: d.ConversationID, ConvSeq: next[d.ConversationID],
			SenderID: d.SenderID, Body: d.Body, ClientMsgID: d.ClientMsgID, CreatedAt: st.now})
		fresh = append(fresh, i)
	}
	return msgs, fresh
}

// sendArgs are storeSendSQL's $8…$16 for msgs.
func sendArgs(msgs []store.Message) []any {
	n := len(msgs)
	ids, convs, senders, bodies, cids, seqs, ats := make([]int64, n), make([]int64, n), make([]int64, n), make([]string, n),
		make([]string, n), make([]int64, n), make([]time.Time, n)
	counters := map[int64]int64{}
	for i, m := range msgs {
		ids[i], convs[i], senders[i], bodies[i], cids[i], seqs[i], ats[i] = m.ID, m.ConversationID, m.SenderID, m.Body, m.ClientMsgID, m.ConvSeq, m.CreatedAt
		counters[m.ConversationID] = max(counters[m.ConversationID], m.ConvSeq)
	}
	cIDs, cSeqs := make([]int64, 0, len(counters)), make([]int64, 0, len(counters))
	for id, seq := range counters {
		cIDs, cSeqs = append(cIDs, id), append(cSeqs, seq)
	}
	return []any{ids, convs, senders, bodies, cids, seqs, ats, cIDs, cSeqs}
}
