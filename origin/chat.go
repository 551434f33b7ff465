package origin

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// Message history limits.
const (
	// DefaultMessageLimit is the history page size without ?limit=.
	DefaultMessageLimit = 50
	// MaxMessageLimit is the largest ?limit= accepted.
	MaxMessageLimit = 100
)

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, me int64) error {
	fields, err := requestListFields(r, conversationFieldNames)
	if err != nil {
		return err
	}
	cs, err := s.store.ListConversations(r.Context(), me)
	if err != nil {
		return fmt.Errorf("list conversations %d: %w", me, err)
	}
	if cs == nil {
		cs = []store.ConversationSummary{}
	}
	shaped, err := shapeList(cs, fields)
	if err != nil {
		return err
	}
	// A message (either way) or a read mark purges the inbox; a match,
	// unmatch or block purges the match list, and with it this.
	privateCached(w, contract.ConversationsTag(me), contract.MatchesTag(me))
	return writeJSON(w, http.StatusOK, map[string]any{"conversations": shaped})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q, "limit", DefaultMessageLimit, MaxMessageLimit)
	if err != nil {
		return err
	}
	fields, err := parseListFields(q.Get("fields"), messageFieldNames)
	if err != nil {
		return err
	}
	var before int64
	if v := q.Get("before"); v != "" {
		if before, err = parseID("before", v); err != nil {
			return err
		}
	}
	ms, err := s.store.ListMessages(r.Context(), me, conv, before, limit)
	if err != nil {
		return fmt.Errorf("list messages %d: %w", conv, err)
	}
	if ms == nil {
		ms = []store.Message{}
	}
	var next any
	if len(ms) == limit {
		next = ms[len(ms)-1].ID
	}
	shaped, err := shapeList(ms, fields)
	if err != nil {
		return err
	}
	// A message purges the conversation; an unmatch or block (which end
	// it: the list becomes a 404) purges the member's match list.
	privateCached(w, contract.ConversationTag(conv), contract.MatchesTag(me))
	return writeJSON(w, http.StatusOK, map[string]any{"messages": shaped, "next_before": next})
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	req, err := decodeRequest(w, r, DecodeMessage)
	if err != nil {
		return err
	}
	res := s.messages.send(r.Context(), store.MessageDraft{SenderID: me, ConversationID: conv, Body: req.Body, ClientMsgID: req.ClientMsgID})
	if res.Err != nil {
		return fmt.Errorf("send message in %d: %w", conv, res.Err)
	}
	privateNoStore(w)
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		setPurge(w, sentPurge(me, res)...)
		// The sender's inbox (the conversation's last message) is what the
		// app shows next; the message list it already shows the message in.
		setRefresh(w, inboxPath)
	}
	return writeJSON(w, status, res.Message)
}

// inboxPath is the caller's conversation list, as the app asks for it.
const inboxPath = "/api/conversations"

// sentPurge is what a stored message changes: its conversation's message
// lists and the inbox of every member (the users its events went to, and
// the sender).
func sentPurge(me int64, res store.SendResult) []string {
	tags := []string{contract.ConversationTag(res.Message.ConversationID), contract.ConversationsTag(me)}
	for _, ev := range res.Events {
		if t := contract.ConversationsTag(ev.UserID); !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// storeMessages is the batcher's commit: one store call for the batch,
// then its events to the bus.
func (s *Server) storeMessages(ctx context.Context, drafts []store.MessageDraft) []store.SendResult {
	res := s.store.SendMessages(ctx, drafts)
	var evs []store.Event
	for _, r := range res {
		evs = append(evs, r.Events...)
	}
	s.events.publish(evs)
	s.pushMessages(res)
	return res
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	msg, err := decodeRequest(w, r, DecodeRead)
	if err != nil {
		return err
	}
	evs, err := s.store.MarkRead(r.Context(), me, conv, msg)
	if err != nil {
		return fmt.Errorf("mark read %d in %d: %w", msg, conv, err)
	}
	s.events.publish(evs)
	privateNoStore(w)
	setPurge(w, contract.ConversationsTag(me)) // the unread count
	setRefresh(w, inboxPath)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
