package memory

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

// conv returns an open conversation the user takes part in (caller holds mu).
func (s *Store) conv(id, convID int64) (*conversation, error) {
	c, ok := s.convs[convID]
	if !ok || (c.a != id && c.b != id) || s.matches[c.matchID].ended {
		return nil, fmt.Errorf("memory: conversation %d: %w", convID, store.ErrNotFound)
	}
	return c, nil
}

func (c *conversation) unread(me int64) int64 {
	last := c.lastRead[me]
	var n int64
	for i := len(c.messages) - 1; i >= 0 && c.messages[i].ID > last; i-- {
		if c.messages[i].SenderID != me {
			n++
		}
	}
	return n
}

// ListConversations implements store.Store.
func (s *Store) ListConversations(ctx context.Context, id int64) ([]store.ConversationSummary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type row struct {
		sum store.ConversationSummary
		at  time.Time
	}
	var rows []row
	for _, c := range s.convs {
		if (c.a != id && c.b != id) || s.matches[c.matchID].ended {
			continue
		}
		sum := store.ConversationSummary{ID: c.id, MatchID: c.matchID, PeerID: c.peer(id), CreatedAt: c.createdAt, UnreadCount: c.unread(id)}
		if n := len(c.messages); n > 0 {
			m := c.messages[n-1]
			sum.LastMessage = &m
		}
		rows = append(rows, row{sum, c.lastActivity})
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].at.Equal(rows[j].at) {
			return rows[i].at.After(rows[j].at)
		}
		return rows[i].sum.ID > rows[j].sum.ID
	})
	out := make([]store.ConversationSummary, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.sum)
	}
	return out, nil
}

// ListMessages implements store.Store.
func (s *Store) ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]store.Message, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, err := s.conv(id, convID)
	if err != nil {
		return nil, err
	}
	end := len(c.messages)
	if before > 0 {
		end = sort.Search(len(c.messages), func(i int) bool { return c.messages[i].ID >= before })
		if end == len(c.messages) || c.messages[end].ID != before {
			return []store.Message{}, nil // the cursor is not a message of this conversation
		}
	}
	out := []store.Message{}
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, c.messages[i])
	}
	return out, nil
}

// SendMessages implements store.Store: under the store's lock, so the
// batch is one atomic step.
func (s *Store) SendMessages(ctx context.Context, drafts []store.MessageDraft) []store.SendResult {
	out := make([]store.SendResult, len(drafts))
	if err := ctx.Err(); err != nil {
		for i := range out {
			out[i].Err = fmt.Errorf("memory: send message: %w", err)
		}
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range drafts {
		out[i] = s.sendMessage(d)
	}
	return out
}

// sendMessage stores one message and its events (caller holds mu).
func (s *Store) sendMessage(d store.MessageDraft) store.SendResult {
	c, err := s.conv(d.SenderID, d.ConversationID)
	if err != nil {
		return store.SendResult{Err: err}
	}
	key := fmt.Sprintf("%d\x00%s", d.SenderID, d.ClientMsgID)
	if i, ok := c.byClientID[key]; ok {
		return store.SendResult{Message: c.messages[i]}
	}
	s.nextMsg++
	m := store.Message{ID: s.nextMsg, ConversationID: d.ConversationID, ConvSeq: int64(len(c.messages)) + 1, SenderID: d.SenderID,
		Body: d.Body, ClientMsgID: d.ClientMsgID, CreatedAt: s.tick()}
	c.messages = append(c.messages, m)
	c.byClientID[key] = len(c.messages) - 1
	c.lastActivity = m.CreatedAt
	return store.SendResult{Message: m, Created: true, Events: s.appendEvents(store.MessageEvents(m, c.peer(d.SenderID)))}
}

// peer is the other participant.
func (c *conversation) peer(me int64) int64 {
	if c.a == me {
		return c.b
	}
	return c.a
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, id, convID, messageID int64) ([]store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.conv(id, convID)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(c.messages), func(i int) bool { return c.messages[i].ID >= messageID })
	if i == len(c.messages) || c.messages[i].ID != messageID {
		return nil, fmt.Errorf("memory: mark read: message %d not in conversation %d: %w", messageID, convID, store.ErrNotFound)
	}
	if messageID <= c.lastRead[id] {
		return nil, nil
	}
	c.lastRead[id] = messageID
	return s.appendEvents(store.ReadEvents(convID, id, c.peer(id), messageID)), nil
}
