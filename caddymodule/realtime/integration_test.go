package realtime

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

const wait = 10 * time.Second

// TestChatThroughTheEdge: two users matched; one sends, gets sent only
// after the origin stored it, and both get the message event; typing
// reaches the peer; a read receipt goes through the origin.
func TestChatThroughTheEdge(t *testing.T) {
	e := startEdge(t, "")
	e.origin.match(7, 1, 2)
	// since=0: the whole log first (the match), then live; no event
	// committed after the connection started can fall between.
	a := e.connect(1, "since=0")
	b := e.connect(2, "since=0")
	for _, c := range []*client{a, b} {
		if evs, _ := c.until(typeEvent, 1, wait); seqs(t, evs)[0] != 1 {
			t.Fatalf("first event %s", evs[0].Event)
		}
	}

	a.send(`{"type":"send","conversation_id":7,"body":"hi","client_msg_id":"m1"}`)
	sent, other := a.until(typeSent, 1, wait)
	var msg struct {
		ID      int64  `json:"id"`
		ConvSeq int64  `json:"conv_seq"`
		Body    string `json:"body"`
	}
	if err := json.Unmarshal(sent[0].Message, &msg); err != nil || sent[0].ClientMsgID != "m1" || msg.Body != "hi" || msg.ConvSeq != 1 {
		t.Fatalf("sent %+v: %v", sent[0], err)
	}
	// The sender's own message event (its other devices get it too).
	if evs, _ := a.until(typeEvent, 1-countType(other, typeEvent), wait); len(evs)+countType(other, typeEvent) != 1 {
		t.Fatalf("sender events %v %v", evs, other)
	}
	evs, _ := b.until(typeEvent, 1, wait)
	ev, err := decodeEvent(evs[0].Event)
	if err != nil || ev.Kind != "message" || ev.Seq != 2 { // 1 is the match
		t.Fatalf("peer event %s: %v", evs[0].Event, err)
	}

	b.send(`{"type":"typing","conversation_id":7}`)
	typing, _ := a.until(typeTyping, 1, wait)
	if typing[0].ConversationID != 7 || typing[0].UserID != 2 {
		t.Fatalf("typing %+v", typing[0])
	}

	b.send(fmt.Sprintf(`{"type":"read","conversation_id":7,"message_id":%d}`, msg.ID))
	reads, _ := a.until(typeEvent, 1, wait)
	if ev, _ := decodeEvent(reads[0].Event); ev.Kind != "read" {
		t.Fatalf("read event %s", reads[0].Event)
	}
}

func countType(fs []serverFrame, typ string) int {
	n := 0
	for _, f := range fs {
		if f.Type == typ {
			n++
		}
	}
	return n
}
