package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Subprotocol is the protocol's name and version, offered by the client
// and answered by the server in Sec-WebSocket-Protocol.
const Subprotocol = "spark.v1"

// tokenSubprotocolPrefix starts the second subprotocol a browser offers to
// carry its bearer token (browsers cannot set Authorization on a
// WebSocket): spark.token.<jwt>. It is never echoed back and never logged.
const tokenSubprotocolPrefix = "spark.token."

// Close codes the server ends a connection with (README: the protocol).
const (
	closeNormal         = 1000 // normal; also after a resync frame
	closeGoingAway      = 1001 // the edge is stopping: reconnect elsewhere
	closeInvalidUTF8    = 1007 // a text message that is not UTF-8
	closePolicy         = 1008 // kept sending above the rate after rate-limit errors
	closeTooBig         = 1009 // a message larger than max_frame
	closeInternal       = 1011 // the edge failed
	closeTryAgainLater  = 1013 // slow consumer: queue full; resume loses nothing
	closeTokenExpired   = 4001 // the token's exp passed: refresh and reconnect
	closeTokenRefused   = 4003 // the origin refused the token at a later check
	closeNoStatus       = 1005 // a close frame without a code (counted, never sent)
	closeAbnormal       = 1006 // no close frame (counted, never sent)
	slowConsumerReason  = "slow consumer; retry after 1s"
	goingAwayReason     = "edge stopping; reconnect"
	tokenExpiredReason  = "token expired"
	tokenRefusedReason  = "token refused"
	policyReason        = "rate limit exceeded"
	invalidUTF8Reason   = "invalid UTF-8"
	resyncReason        = "resync"
	internalErrorReason = "internal error"
)

// Error codes of error frames.
const (
	codeBadFrame          = "bad_frame"          // not a JSON object, a field missing or of the wrong type, a binary message
	codeUnknownType       = "unknown_type"       // a type this version does not know
	codeRateLimited       = "rate_limited"       // above the inbound rate; the frame was dropped
	codeNotMember         = "not_member"         // not a conversation of the user's (or no longer)
	codeInvalid           = "invalid"            // the origin refused the content (400/422)
	codeBadAck            = "bad_ack"            // an ack beyond what was delivered
	codeOriginUnavailable = "origin_unavailable" // the origin failed or timed out: retry
	codeConflict          = "conflict"           // the origin answered 409
)

// Client frame types.
const (
	typeSend   = "send"
	typeRead   = "read"
	typeTyping = "typing"
	typeAck    = "ack"
)

// Server frame types (typing is both).
const (
	typeEvent  = "event"
	typeSent   = "sent"
	typeError  = "error"
	typeResync = "resync"
)

// frameError is a client frame that could not be handled: it becomes an
// error frame, and the connection stays.
type frameError struct {
	ref, code, detail string
}

func (e *frameError) Error() string { return e.code + ": " + e.detail }

// badFrame is a frameError for a malformed frame.
func badFrame(ref, format string, args ...any) *frameError {
	return &frameError{ref: ref, code: codeBadFrame, detail: fmt.Sprintf(format, args...)}
}

// clientFrame is one decoded client frame: Type says which fields are set.
type clientFrame struct {
	Type           string
	ConversationID int64
	Body           string
	ClientMsgID    string
	MessageID      int64
	Seq            int64
}

// wireFrame is every field a client frame may carry, as sent.
type wireFrame struct {
	Type           *string `json:"type"`
	ConversationID *int64  `json:"conversation_id"`
	Body           *string `json:"body"`
	ClientMsgID    *string `json:"client_msg_id"`
	MessageID      *int64  `json:"message_id"`
	Seq            *int64  `json:"seq"`
}

// clientDecoders check each client frame type's fields.
var clientDecoders = map[string]func(*wireFrame) (clientFrame, *frameError){
	typeSend:   checkSend,
	typeRead:   checkRead,
	typeTyping: checkTyping,
	typeAck:    checkAck,
}

// decodeClientFrame decodes one client message: a JSON object with a type.
// Fields of other types are ignored; unknown fields too (a later minor
// version may add some).
func decodeClientFrame(data []byte) (clientFrame, *frameError) {
	var w wireFrame
	if err := json.Unmarshal(data, &w); err != nil {
		return clientFrame{}, badFrame("", "not a JSON frame object: %s", jsonProblem(err))
	}
	if w.Type == nil {
		return clientFrame{}, badFrame("", "the frame has no type")
	}
	check, ok := clientDecoders[*w.Type]
	if !ok {
		return clientFrame{}, &frameError{ref: truncate(*w.Type, 64), code: codeUnknownType, detail: "unknown frame type; " + Subprotocol + " knows send, read, typing, ack"}
	}
	return check(&w)
}

// decodeSend decodes a send frame.
func decodeSend(data []byte) (clientFrame, *frameError) { return decodeTyped(data, typeSend) }

// decodeRead decodes a read frame.
func decodeRead(data []byte) (clientFrame, *frameError) { return decodeTyped(data, typeRead) }

// decodeTyping decodes a typing frame.
func decodeTyping(data []byte) (clientFrame, *frameError) { return decodeTyped(data, typeTyping) }

// decodeAck decodes an ack frame.
func decodeAck(data []byte) (clientFrame, *frameError) { return decodeTyped(data, typeAck) }

// decodeTyped decodes a frame that must be of type want.
func decodeTyped(data []byte, want string) (clientFrame, *frameError) {
	f, err := decodeClientFrame(data)
	if err == nil && f.Type != want {
		return clientFrame{}, badFrame(want, "not a %s frame", want)
	}
	return f, err
}

// Limits of a send frame's fields, as the origin checks them (it has the
// last word: these only refuse early what it would refuse).
const (
	maxClientMsgIDBytes = 64
	maxBodyBytes        = 16 << 10
)

func checkSend(w *wireFrame) (clientFrame, *frameError) {
	ref := typeSend
	if w.ClientMsgID != nil && *w.ClientMsgID != "" && len(*w.ClientMsgID) <= maxClientMsgIDBytes {
		ref = *w.ClientMsgID
	}
	switch {
	case w.ClientMsgID == nil || *w.ClientMsgID == "" || len(*w.ClientMsgID) > maxClientMsgIDBytes:
		return clientFrame{}, badFrame(ref, "client_msg_id is required: a string of 1 to %d bytes", maxClientMsgIDBytes)
	case w.ConversationID == nil || *w.ConversationID <= 0:
		return clientFrame{}, badFrame(ref, "conversation_id is required: a positive integer")
	case w.Body == nil || *w.Body == "" || len(*w.Body) > maxBodyBytes:
		return clientFrame{}, badFrame(ref, "body is required: a string of 1 to %d bytes", maxBodyBytes)
	}
	return clientFrame{Type: typeSend, ConversationID: *w.ConversationID, Body: *w.Body, ClientMsgID: *w.ClientMsgID}, nil
}

func checkRead(w *wireFrame) (clientFrame, *frameError) {
	if w.ConversationID == nil || *w.ConversationID <= 0 || w.MessageID == nil || *w.MessageID <= 0 {
		return clientFrame{}, badFrame(typeRead, "conversation_id and message_id are required: positive integers")
	}
	return clientFrame{Type: typeRead, ConversationID: *w.ConversationID, MessageID: *w.MessageID}, nil
}

func checkTyping(w *wireFrame) (clientFrame, *frameError) {
	if w.ConversationID == nil || *w.ConversationID <= 0 {
		return clientFrame{}, badFrame(typeTyping, "conversation_id is required: a positive integer")
	}
	return clientFrame{Type: typeTyping, ConversationID: *w.ConversationID}, nil
}

func checkAck(w *wireFrame) (clientFrame, *frameError) {
	if w.Seq == nil || *w.Seq < 0 {
		return clientFrame{}, badFrame(typeAck, "seq is required: a non-negative integer")
	}
	return clientFrame{Type: typeAck, Seq: *w.Seq}, nil
}

// jsonProblem says what is wrong with a JSON text without quoting it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field + " has the wrong type"
	}
	return "invalid JSON"
}

// truncate cuts s to at most n bytes (an error frame's ref echoes the
// client's text: keep it short).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Server frames. Each encoder appends one frame (no newline) to dst.

// appendEventFrame appends {"type":"event","event":<event>}. event is the
// event's JSON object, compact (no newline: frames are newline-separated).
func appendEventFrame(dst, event []byte) []byte {
	dst = append(dst, `{"type":"event","event":`...)
	dst = append(dst, event...)
	return append(dst, '}')
}

// appendSentFrame appends {"type":"sent","client_msg_id":…,"message":…}
// and, when the origin gave one, "read_after": the write's read-your-writes
// position, which the client sends back as Spark-Read-After on its next
// REST reads.
func appendSentFrame(dst []byte, clientMsgID string, message []byte, readAfter string) []byte {
	dst = append(dst, `{"type":"sent","client_msg_id":`...)
	dst = appendJSONString(dst, clientMsgID)
	if readAfter != "" {
		dst = append(dst, `,"read_after":`...)
		dst = appendJSONString(dst, readAfter)
	}
	dst = append(dst, `,"message":`...)
	dst = append(dst, message...)
	return append(dst, '}')
}

// appendTypingFrame appends {"type":"typing","conversation_id":C,"user_id":U}.
func appendTypingFrame(dst []byte, conversationID, userID int64) []byte {
	dst = append(dst, `{"type":"typing","conversation_id":`...)
	dst = strconv.AppendInt(dst, conversationID, 10)
	dst = append(dst, `,"user_id":`...)
	dst = strconv.AppendInt(dst, userID, 10)
	return append(dst, '}')
}

// appendErrorFrame appends {"type":"error","ref":…,"code":…,"detail":…}.
func appendErrorFrame(dst []byte, e *frameError) []byte {
	dst = append(dst, `{"type":"error","ref":`...)
	dst = appendJSONString(dst, e.ref)
	dst = append(dst, `,"code":`...)
	dst = appendJSONString(dst, e.code)
	dst = append(dst, `,"detail":`...)
	dst = appendJSONString(dst, e.detail)
	return append(dst, '}')
}

// resyncFrame is the resync frame.
var resyncFrame = []byte(`{"type":"resync"}`)

// appendJSONString appends s as a JSON string (invalid UTF-8 replaced).
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// compactJSON returns data without insignificant whitespace (a JSON text
// from elsewhere may end in a newline, which would split a frame).
func compactJSON(data []byte) ([]byte, error) {
	if bytes.IndexAny(data, "\n\r") < 0 {
		return data, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// event is a durable event as the origin writes it (in its events API, on
// the bus, in an event frame): {"seq","kind","at","data"}.
type event struct {
	// Seq is the event's place in its user's log.
	Seq int64 `json:"seq"`
	// Kind is message, match, read or unmatch.
	Kind string `json:"kind"`
	// At is the commit time at the origin.
	At time.Time `json:"at"`
	// Data is the kind's object.
	Data eventData `json:"data"`
}

// eventData is what the edge reads of an event's data: what keeps a
// connection's conversations current (match, unmatch). The rest passes
// through untouched.
type eventData struct {
	// ConversationID is the conversation the event is about.
	ConversationID int64 `json:"conversation_id"`
	// PeerID is the other user of a match or an unmatch.
	PeerID int64 `json:"peer_id"`
}

// Event kinds the edge acts on.
const (
	kindMatch   = "match"
	kindUnmatch = "unmatch"
)

// decodeEvent decodes a durable event's JSON: it must be an object with a
// positive seq and a kind.
func decodeEvent(data []byte) (event, error) {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return event{}, fmt.Errorf("decode event: %s", jsonProblem(err))
	}
	if e.Seq <= 0 || e.Kind == "" {
		return event{}, errors.New("decode event: seq and kind are required")
	}
	return e, nil
}

// typingNotice is an ephemeral typing frame as published on the bus.
type typingNotice struct {
	// Type is "typing".
	Type string `json:"type"`
	// ConversationID is where the user types.
	ConversationID int64 `json:"conversation_id"`
	// UserID is who types.
	UserID int64 `json:"user_id"`
}

// decodeTypingNotice decodes a typing frame from the bus.
func decodeTypingNotice(data []byte) (typingNotice, error) {
	var n typingNotice
	if err := json.Unmarshal(data, &n); err != nil {
		return typingNotice{}, fmt.Errorf("decode typing: %s", jsonProblem(err))
	}
	if n.Type != typeTyping || n.ConversationID <= 0 || n.UserID <= 0 {
		return typingNotice{}, errors.New("decode typing: type typing, conversation_id and user_id are required")
	}
	return n, nil
}
