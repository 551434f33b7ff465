package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// EventKind names what a durable event reports.
type EventKind string

// The kinds of durable events (design: realtime, §1).
const (
	// EventMessage: a message was stored; to both participants (the
	// sender's other devices too). Data: the Message.
	EventMessage EventKind = "message"
	// EventMatch: a swipe made a match; to both users. Data: MatchEventData.
	EventMatch EventKind = "match"
	// EventRead: a participant's read mark moved forward; to both
	// participants. Data: ReadEventData.
	EventRead EventKind = "read"
	// EventUnmatch: a match ended by an unmatch or a block; to both users.
	// Data: UnmatchEventData.
	EventUnmatch EventKind = "unmatch"
)

// Event is one entry of a user's event log. Its JSON is what the events
// API, the bus and the edge's WebSocket frames carry, byte for byte:
// {"seq":124,"kind":"message","at":"…","data":{…}}.
type Event struct {
	// UserID is whose log the event is in (not part of the JSON: the log,
	// the bus channel and the connection already say it).
	UserID int64 `json:"-"`
	// Seq is the event's position in the user's log: 1, 2, 3 … without gaps.
	Seq int64 `json:"seq"`
	// Kind says what happened.
	Kind EventKind `json:"kind"`
	// At is when the store appended the event, just before its write
	// committed (UTC, microseconds).
	At time.Time `json:"at"`
	// Data is the kind's object (see EventKind), as JSON.
	Data json.RawMessage `json:"data"`
}

// JSON returns the event's JSON.
func (e Event) JSON() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %d/%d: %w", e.UserID, e.Seq, err)
	}
	return b, nil
}

// MatchEventData is the data of an EventMatch, from its recipient's side:
// the match, its conversation, the other user and when it was made.
type MatchEventData struct {
	MatchID        int64     `json:"match_id"`
	ConversationID int64     `json:"conversation_id"`
	PeerID         int64     `json:"peer_id"`
	CreatedAt      time.Time `json:"created_at"`
}

// ReadEventData is the data of an EventRead: who read the conversation up
// to which message.
type ReadEventData struct {
	ConversationID int64 `json:"conversation_id"`
	ReaderID       int64 `json:"reader_id"`
	MessageID      int64 `json:"message_id"`
}

// UnmatchEventData is the data of an EventUnmatch, from its recipient's
// side: the match that ended, its conversation and the other user.
type UnmatchEventData struct {
	MatchID        int64 `json:"match_id"`
	ConversationID int64 `json:"conversation_id"`
	PeerID         int64 `json:"peer_id"`
}

// PendingEvent is an event a write is about to append: its recipient, kind
// and data, without the sequence number and time the store assigns.
type PendingEvent struct {
	// UserID is whose log it goes to.
	UserID int64
	// Kind says what happened.
	Kind EventKind
	// Data is the kind's object, as JSON.
	Data json.RawMessage
}

func pending(to int64, kind EventKind, data any) PendingEvent {
	b, err := json.Marshal(data)
	if err != nil {
		// Only fixed structs of integers, strings and times are encoded.
		panic(fmt.Sprintf("store: encode %s event data: %v", kind, err))
	}
	return PendingEvent{UserID: to, Kind: kind, Data: b}
}

// MessageEvents returns the message events of m: one for each participant,
// the sender first (both carry the same data).
func MessageEvents(m Message, peer int64) []PendingEvent {
	m.CreatedAt = m.CreatedAt.UTC()
	e := pending(m.SenderID, EventMessage, m)
	return []PendingEvent{e, {UserID: peer, Kind: EventMessage, Data: e.Data}}
}

// MatchEvents returns the match events of m for both users, each with the
// other as peer.
func MatchEvents(m Match) []PendingEvent {
	out := make([]PendingEvent, 0, 2)
	for _, to := range []int64{m.UserA, m.UserB} {
		out = append(out, pending(to, EventMatch, MatchEventData{MatchID: m.ID, ConversationID: m.ConversationID,
			PeerID: m.Peer(to), CreatedAt: m.CreatedAt.UTC()}))
	}
	return out
}

// UnmatchEvents returns the unmatch events of the ended match m for both
// users, each with the other as peer.
func UnmatchEvents(m Match) []PendingEvent {
	out := make([]PendingEvent, 0, 2)
	for _, to := range []int64{m.UserA, m.UserB} {
		out = append(out, pending(to, EventUnmatch, UnmatchEventData{MatchID: m.ID, ConversationID: m.ConversationID, PeerID: m.Peer(to)}))
	}
	return out
}

// ReadEvents returns the read events of reader's mark moving to messageID
// in conversation conv: to the reader, then to the peer.
func ReadEvents(conv, reader, peer, messageID int64) []PendingEvent {
	e := pending(reader, EventRead, ReadEventData{ConversationID: conv, ReaderID: reader, MessageID: messageID})
	return []PendingEvent{e, {UserID: peer, Kind: EventRead, Data: e.Data}}
}

// Sequence numbers pending events: each gets its user's next sequence
// number after last[user] (last is advanced) and the time at. It is how
// both stores number events, in the order the write lists them.
func Sequence(ps []PendingEvent, last map[int64]int64, at time.Time) []Event {
	out := make([]Event, len(ps))
	for i, p := range ps {
		last[p.UserID]++
		out[i] = Event{UserID: p.UserID, Seq: last[p.UserID], Kind: p.Kind, At: at, Data: p.Data}
	}
	return out
}

// EventTime is at as stored with events: UTC, to the microsecond (what
// PostgreSQL keeps), so the JSON published at commit and the JSON read back
// from the log are the same bytes.
func EventTime(at time.Time) time.Time { return at.UTC().Truncate(time.Microsecond) }

// GoneError is the ErrGone Events returns (errors.Is(err, ErrGone) holds):
// the events after Since are not in the log, which ends at LastSeq.
type GoneError struct {
	// Since is the seq asked after.
	Since int64
	// LastSeq is the user's newest seq.
	LastSeq int64
}

// Error implements error.
func (e *GoneError) Error() string {
	return fmt.Sprintf("events after %d not in the log (newest %d): %v", e.Since, e.LastSeq, ErrGone)
}

// Is makes errors.Is(err, ErrGone) true.
func (e *GoneError) Is(target error) bool { return target == ErrGone }

// EventPage is a slice of a user's log.
type EventPage struct {
	// Events are the user's events after the asked sequence number,
	// ascending.
	Events []Event
	// LastSeq is the user's newest sequence number (0: no event yet).
	LastSeq int64
}

// Retention says which events PruneEvents keeps per user: the last
// KeepLast, and every one younger than KeepFor, whichever is more.
type Retention struct {
	// KeepLast is how many of a user's newest events are always kept.
	KeepLast int64
	// KeepFor is how long an event is kept whatever KeepLast says.
	KeepFor time.Duration
	// Now is the time KeepFor counts back from.
	Now time.Time
}

// Cutoff is the time before which an event beyond KeepLast may go.
func (r Retention) Cutoff() time.Time { return r.Now.Add(-r.KeepFor) }

// MessageDraft is one message to store (SendMessages).
type MessageDraft struct {
	// SenderID sends the message; they must take part in the conversation.
	SenderID int64
	// ConversationID is where it goes.
	ConversationID int64
	// Body is the text.
	Body string
	// ClientMsgID makes a retry idempotent per (conversation, sender).
	ClientMsgID string
}

// SendResult is the outcome of one MessageDraft.
type SendResult struct {
	// Message is the stored message (a retry's: the one stored first).
	Message Message
	// Created is false when the message had already been stored.
	Created bool
	// Events are the events the write appended (none for a retry), for
	// publishing once committed.
	Events []Event
	// Err is why this message was not stored (ErrNotFound: not a
	// participant of a live match's conversation).
	Err error
}

// SendOne stores one message through s.SendMessages.
func SendOne(ctx context.Context, s Store, d MessageDraft) SendResult {
	return s.SendMessages(ctx, []MessageDraft{d})[0]
}
