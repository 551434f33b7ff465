package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// serverFrame is one decoded server frame, as a client reads it: Type
// says which fields are set. The tests read the handler's frames with it,
// strictly (an event frame's event is checked as the server checks the
// events it relays).
type serverFrame struct {
	// Type is event, sent, typing, error or resync.
	Type string `json:"type"`
	// Event is an event frame's event, as sent.
	Event json.RawMessage `json:"event,omitempty"`
	// ClientMsgID is a sent frame's client_msg_id.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// ReadAfter is a sent frame's read-your-writes position.
	ReadAfter string `json:"read_after,omitempty"`
	// Message is a sent frame's stored message, as the origin wrote it.
	Message json.RawMessage `json:"message,omitempty"`
	// ConversationID and UserID are a typing frame's.
	ConversationID int64 `json:"conversation_id,omitempty"`
	UserID         int64 `json:"user_id,omitempty"`
	// Ref, Code and Detail are an error frame's.
	Ref    string `json:"ref,omitempty"`
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// serverDecoders check each server frame type's fields.
var serverDecoders = map[string]func(*serverFrame) error{
	typeEvent: func(f *serverFrame) error {
		_, err := decodeEvent(f.Event)
		return err
	},
	typeSent: func(f *serverFrame) error {
		if f.ClientMsgID == "" || len(f.Message) == 0 || f.Message[0] != '{' {
			return errors.New("a sent frame needs client_msg_id and a message object")
		}
		return nil
	},
	typeTyping: func(f *serverFrame) error {
		if f.ConversationID <= 0 || f.UserID <= 0 {
			return errors.New("a typing frame needs conversation_id and user_id")
		}
		return nil
	},
	typeError: func(f *serverFrame) error {
		if f.Code == "" {
			return errors.New("an error frame needs a code")
		}
		return nil
	},
	typeResync: func(*serverFrame) error { return nil },
}

// decodeServerFrame decodes one server frame (one line of a message).
func decodeServerFrame(line []byte) (serverFrame, error) {
	var f serverFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return serverFrame{}, fmt.Errorf("decode server frame: %s", jsonProblem(err))
	}
	check, ok := serverDecoders[f.Type]
	if !ok {
		return serverFrame{}, fmt.Errorf("decode server frame: unknown type %.32q", f.Type)
	}
	if err := check(&f); err != nil {
		return serverFrame{}, fmt.Errorf("decode %s frame: %w", f.Type, err)
	}
	return f, nil
}

// decodeServerMessage splits a server message into its frames (one per
// line) and decodes each.
func decodeServerMessage(msg []byte) ([]serverFrame, error) {
	var out []serverFrame
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		f, err := decodeServerFrame(line)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}
