package origin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/spark-edge/spark/origin/store"
)

// SendBatchPattern is the route through which an edge stores many users'
// messages in one request (the realtime edge coalesces the sends of its
// connections into it). Each message carries its sender's token and is
// authorised, validated and answered as POST
// /api/conversations/{id}/messages would be: the request as a whole needs
// no credential of its own and grants nothing a message's own token does
// not.
const SendBatchPattern = "POST /api/messages/batch"

// Send batch limits.
const (
	// MaxSendBatchMessages is the most messages one batch request holds.
	MaxSendBatchMessages = 128
	// MaxSendBatchBytes caps a batch request's body.
	MaxSendBatchBytes = 4 << 20
)

// SendBatchRequest is the body of POST /api/messages/batch.
type SendBatchRequest struct {
	// Messages are stored in order; those of one conversation keep it.
	Messages []SendBatchItem `json:"messages"`
}

// SendBatchItem is one message of a batch, with its sender's token.
type SendBatchItem struct {
	// Token is the sender's bearer token (without "Bearer ").
	Token          string `json:"token"`
	ConversationID int64  `json:"conversation_id"`
	Body           string `json:"body"`
	ClientMsgID    string `json:"client_msg_id"`
}

// SendBatchResult is one message's answer: the status and body that POST
// /api/conversations/{id}/messages would have answered (201 stored, 200 a
// retry of a stored message, else a problem), and the cache tags its
// Spark-Purge field would have named: the edge that sent the batch purges
// them, as no edge cache sees this route's answer per message.
type SendBatchResult struct {
	Status  int             `json:"status"`
	Message *store.Message  `json:"message,omitempty"`
	Problem json.RawMessage `json:"problem,omitempty"`
	Purge   []string        `json:"purge,omitempty"`
}

// DecodeSendBatch parses and checks the shape of a batch: 1 to
// MaxSendBatchMessages messages. Each message's own fields are checked
// when it is handled, so a bad one fails alone.
func DecodeSendBatch(data []byte) (SendBatchRequest, error) {
	var req SendBatchRequest
	if err := decodeJSON(data, &req); err != nil {
		return SendBatchRequest{}, err
	}
	if n := len(req.Messages); n == 0 || n > MaxSendBatchMessages {
		return SendBatchRequest{}, badRequest("messages must hold 1 to %d messages, not %d", MaxSendBatchMessages, n)
	}
	return req, nil
}

// sendBatch stores the messages of many users in one request: each is
// authenticated with its own token and checked alone, the valid ones go to
// the message batcher together, and the answer lists a result per
// message, in order (always 200 once the batch itself was readable).
func (s *Server) sendBatch(w http.ResponseWriter, r *http.Request) {
	data, err := readBodyUpTo(w, r, MaxSendBatchBytes)
	var req SendBatchRequest
	if err == nil {
		req, err = DecodeSendBatch(data)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	results := make([]SendBatchResult, len(req.Messages))
	drafts := make([]store.MessageDraft, 0, len(req.Messages))
	at := make([]int, 0, len(req.Messages)) // drafts[k] answers results[at[k]]
	for i, m := range req.Messages {
		me, err := s.auth.Authenticate("Bearer " + m.Token)
		if err != nil {
			results[i] = SendBatchResult{Status: http.StatusUnauthorized, Problem: problemJSON(r, http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required")}
			continue
		}
		if m.ConversationID <= 0 {
			err = badRequest("conversation id %d is not a positive integer id", m.ConversationID)
		} else {
			err = MessageRequest{Body: m.Body, ClientMsgID: m.ClientMsgID}.check()
		}
		if err != nil {
			results[i] = s.failedResult(r, err)
			continue
		}
		drafts = append(drafts, store.MessageDraft{SenderID: me, ConversationID: m.ConversationID, Body: m.Body, ClientMsgID: m.ClientMsgID})
		at = append(at, i)
	}
	for k, res := range s.messages.sendAll(r.Context(), drafts) {
		i := at[k]
		switch {
		case res.Err != nil:
			results[i] = s.failedResult(r, fmt.Errorf("send message in %d: %w", drafts[k].ConversationID, res.Err))
		case res.Created:
			msg := res.Message
			results[i] = SendBatchResult{Status: http.StatusCreated, Message: &msg, Purge: sentPurge(drafts[k].SenderID, res)}
		default:
			msg := res.Message
			results[i] = SendBatchResult{Status: http.StatusOK, Message: &msg}
		}
	}
	privateNoStore(w)
	_ = writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// failedResult is the problem the single-message route answers for err.
func (s *Server) failedResult(r *http.Request, err error) SendBatchResult {
	rec := httptest.NewRecorder()
	s.writeError(rec, r, err)
	return SendBatchResult{Status: rec.Code, Problem: json.RawMessage(rec.Body.Bytes())}
}

// problemJSON is a problem document as JSON.
func problemJSON(r *http.Request, status int, code, detail string) json.RawMessage {
	b, _ := json.Marshal(newProblem(r, status, code, detail))
	return b
}
