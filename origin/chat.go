package origin

import (
	"fmt"
	"net/http"

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
	cs, err := s.store.ListConversations(r.Context(), me)
	if err != nil {
		return fmt.Errorf("list conversations %d: %w", me, err)
	}
	if cs == nil {
		cs = []store.ConversationSummary{}
	}
	privateNoStore(w)
	return writeJSON(w, http.StatusOK, map[string]any{"conversations": cs})
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
	privateNoStore(w)
	return writeJSON(w, http.StatusOK, map[string]any{"messages": ms, "next_before": next})
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
	m, created, err := s.store.SendMessage(r.Context(), me, conv, req.Body, req.ClientMsgID)
	if err != nil {
		return fmt.Errorf("send message in %d: %w", conv, err)
	}
	privateNoStore(w)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, m)
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
	if err := s.store.MarkRead(r.Context(), me, conv, msg); err != nil {
		return fmt.Errorf("mark read %d in %d: %w", msg, conv, err)
	}
	privateNoStore(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
