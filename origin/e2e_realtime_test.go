package origin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRealtimeThroughEdge runs the origin (embedded store, its event stream
// with the development token) behind a real edge (the repository's
// Caddyfile, spark_realtime subscribed to that stream) and connects two
// users of a match over WebSockets: a message sent over one socket is
// acknowledged with `sent` once the origin stored it, the peer's socket
// gets its `message` event, and that event is the one GET /api/events
// serves (same seq, same bytes). The edge stores it through the origin's
// batch route.
func TestRealtimeThroughEdge(t *testing.T) {
	originAddr, edgeBase := startStack(t, 50)
	conv, peer := firstConversation(t, originAddr, 1)
	sender, receiver := dialEdge(t, edgeBase, devToken(t, 1)), dialEdge(t, edgeBase, devToken(t, peer))
	send := fmt.Sprintf(`{"type":"send","conversation_id":%d,"body":"hello over the edge","client_msg_id":"rt-1"}`, conv)
	if err := sender.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	var sent struct {
		ClientMsgID string `json:"client_msg_id"`
		Message     struct {
			ID      int64 `json:"id"`
			ConvSeq int64 `json:"conv_seq"`
		} `json:"message"`
	}
	if raw := readFrame(t, sender, "sent", nil); json.Unmarshal(raw, &sent) != nil || sent.ClientMsgID != "rt-1" || sent.Message.ConvSeq == 0 {
		t.Fatalf("sent frame %s", raw)
	}
	// The edge stored it through the batch route (one request for
	// whatever its connections sent meanwhile), not the single one.
	res, err := http.Get("http://" + originAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(metrics, []byte(`spark_origin_http_request_duration_seconds_count{code="200",method="POST",route="/api/messages/batch"}`)) {
		t.Fatalf("no 200 answered on /api/messages/batch:\n%s", metrics)
	}
	var event struct {
		Event json.RawMessage `json:"event"`
	}
	raw := readFrame(t, receiver, "event", func(f []byte) bool { return bytes.Contains(f, []byte(`"client_msg_id":"rt-1"`)) })
	if err := json.Unmarshal(raw, &event); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Seq  int64  `json:"seq"`
		Kind string `json:"kind"`
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(event.Event, &ev); err != nil || ev.Kind != "message" || ev.Data.ID != sent.Message.ID {
		t.Fatalf("peer's event %s (%v), sent message %d", event.Event, err, sent.Message.ID)
	}
	var logged eventsBody
	getJSON(t, fmt.Sprintf("http://%s/api/events?since=%d&limit=1", originAddr, ev.Seq-1), devToken(t, peer), &logged)
	if len(logged.Events) != 1 || !bytes.Equal(logged.Events[0], event.Event) {
		t.Fatalf("the edge delivered %s, the log has %s", event.Event, logged.Events)
	}
}

// firstConversation returns the first conversation of user's inbox (asked
// of the origin) and its peer.
func firstConversation(t *testing.T, originAddr string, user int64) (conv, peer int64) {
	t.Helper()
	var inbox struct {
		Conversations []struct {
			ID     int64 `json:"id"`
			PeerID int64 `json:"peer_id"`
		} `json:"conversations"`
	}
	getJSON(t, "http://"+originAddr+"/api/conversations", devToken(t, user), &inbox)
	if len(inbox.Conversations) == 0 {
		t.Fatalf("demo user %d has no conversation", user)
	}
	return inbox.Conversations[0].ID, inbox.Conversations[0].PeerID
}

// dialEdge opens a spark.v1 WebSocket to the edge with token, closed when
// the test ends.
func dialEdge(t *testing.T, edgeBase, token string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"spark.v1"}, HandshakeTimeout: 10 * time.Second}
	c, res, err := d.Dial("ws"+strings.TrimPrefix(edgeBase, "http")+"/api/realtime", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("WebSocket to the edge: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrame reads c's frames (a message may carry several, one per line)
// until one of type typ for which match (if any) holds, and returns it.
func readFrame(t *testing.T, c *websocket.Conn, typ string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for a %s frame: %v", typ, err)
		}
		for _, f := range bytes.Split(msg, []byte("\n")) {
			var head struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(f, &head) == nil && head.Type == typ && (match == nil || match(f)) {
				return f
			}
		}
	}
}
