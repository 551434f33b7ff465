// Package sparkv1 is a small client of the edge's realtime chat protocol,
// spark.v1 (README: "Realtime chat"): dial with a bearer token and an
// optional since, send messages, typing indicators, read receipts and acks,
// and read the server's frames. The load test's chat scenario and the
// terminal client `spark realtime` both use it.
package sparkv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Subprotocol is the protocol's name and version.
const Subprotocol = "spark.v1"

// Server frame types.
const (
	TypeEvent  = "event"  // a durable event of the user's log
	TypeSent   = "sent"   // a message was stored durably
	TypeTyping = "typing" // the peer types (ephemeral)
	TypeError  = "error"  // a client frame could not be handled
	TypeResync = "resync" // events lost beyond retention: refetch over REST
)

// Event kinds.
const (
	KindMessage = "message" // a message was stored (to both participants)
	KindMatch   = "match"   // a new match
	KindRead    = "read"    // a read receipt
	KindUnmatch = "unmatch" // an unmatch or a block
)

// Frame is one server frame: Type says which fields are set.
type Frame struct {
	// Type is event, sent, typing, error or resync.
	Type string `json:"type"`
	// Event is an event frame's event.
	Event *Event `json:"event,omitempty"`
	// ClientMsgID is a sent frame's client_msg_id.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// ReadAfter is a sent frame's read-your-writes position (the origin's
	// Spark-Read-After for the write; "" when it gave none): send it as
	// Spark-Read-After on the following REST reads, so whichever origin
	// answers them shows the message.
	ReadAfter string `json:"read_after,omitempty"`
	// Message is a sent frame's stored message.
	Message *Message `json:"message,omitempty"`
	// ConversationID and UserID are a typing frame's.
	ConversationID int64 `json:"conversation_id,omitempty"`
	UserID         int64 `json:"user_id,omitempty"`
	// Ref, Code and Detail are an error frame's.
	Ref    string `json:"ref,omitempty"`
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Event is a durable event: its place in the user's log, its kind, the
// origin's commit time and the kind's data.
type Event struct {
	Seq  int64           `json:"seq"`
	Kind string          `json:"kind"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// Message is a stored chat message, as a sent frame and a message event
// carry it.
type Message struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	ConvSeq        int64     `json:"conv_seq"`
	SenderID       int64     `json:"sender_id"`
	Body           string    `json:"body"`
	ClientMsgID    string    `json:"client_msg_id"`
	CreatedAt      time.Time `json:"created_at"`
}

// MessageData decodes a message event's data.
func (e *Event) MessageData() (Message, error) {
	if e.Kind != KindMessage {
		return Message{}, fmt.Errorf("event %d is a %s, not a message", e.Seq, e.Kind)
	}
	var m Message
	if err := json.Unmarshal(e.Data, &m); err != nil {
		return Message{}, fmt.Errorf("decode message event %d: %w", e.Seq, err)
	}
	if m.ID <= 0 || m.SenderID <= 0 || m.ConversationID <= 0 {
		return Message{}, fmt.Errorf("message event %d: id, sender_id and conversation_id are required", e.Seq)
	}
	return m, nil
}

// ErrBadFrame wraps every frame the client could not decode.
var ErrBadFrame = errors.New("bad server frame")

// DecodeFrame decodes one server frame (one line of a server message) and
// checks the fields its type needs.
func DecodeFrame(line []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(line, &f); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	var problem string
	switch f.Type {
	case TypeEvent:
		if f.Event == nil || f.Event.Seq <= 0 || f.Event.Kind == "" {
			problem = "an event frame needs an event with seq and kind"
		}
	case TypeSent:
		if f.ClientMsgID == "" || f.Message == nil || f.Message.ID <= 0 {
			problem = "a sent frame needs client_msg_id and a message with an id"
		}
	case TypeTyping:
		if f.ConversationID <= 0 || f.UserID <= 0 {
			problem = "a typing frame needs conversation_id and user_id"
		}
	case TypeError:
		if f.Code == "" {
			problem = "an error frame needs a code"
		}
	case TypeResync:
	default:
		problem = fmt.Sprintf("unknown frame type %.32q", f.Type)
	}
	if problem != "" {
		return Frame{}, fmt.Errorf("%w: %s", ErrBadFrame, problem)
	}
	return f, nil
}

// DecodeMessage splits a server WebSocket message into its frames (the
// server coalesces queued frames, one per line) and decodes each. On an
// error it returns the frames before the bad one.
func DecodeMessage(msg []byte) ([]Frame, error) {
	var out []Frame
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f, err := DecodeFrame(line)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Client frames. Each is one JSON object.

// SendFrame is a send frame: store body in the conversation, idempotent per
// clientMsgID.
func SendFrame(conversationID int64, body, clientMsgID string) []byte {
	b, _ := json.Marshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		Body           string `json:"body"`
		ClientMsgID    string `json:"client_msg_id"`
	}{"send", conversationID, body, clientMsgID})
	return b
}

// TypingFrame is a typing frame.
func TypingFrame(conversationID int64) []byte {
	return fmt.Appendf(nil, `{"type":"typing","conversation_id":%d}`, conversationID)
}

// ReadFrame is a read receipt.
func ReadFrame(conversationID, messageID int64) []byte {
	return fmt.Appendf(nil, `{"type":"read","conversation_id":%d,"message_id":%d}`, conversationID, messageID)
}

// AckFrame acknowledges every event up to seq.
func AckFrame(seq int64) []byte {
	return fmt.Appendf(nil, `{"type":"ack","seq":%d}`, seq)
}
