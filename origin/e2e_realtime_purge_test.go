package origin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRealtimePurgesThroughEdge runs the origin behind a real edge (the
// repository's Caddyfile: spark_auth, spark_cache, spark_realtime) and
// checks that what a user does over the WebSocket reaches the cached
// private entries as a REST call would: with the peer's message list and
// both users' inboxes stored (hits), a message sent over the socket is in
// the next read of each through the edge once the sender got `sent`; a
// read receipt over the socket refreshes the reader's inbox (unread
// count). These calls reach the origin from spark_realtime (the send in a
// batch call), never through spark_cache, so only spark_realtime's purge
// through the spark_cache app keeps the entries true.
func TestRealtimePurgesThroughEdge(t *testing.T) {
	originAddr, edgeBase := startStack(t, 50)
	conv, peer := firstConversation(t, originAddr, 1)
	// One token per user for the whole test: private entries are keyed by
	// the credential, and devToken's tokens change every second.
	tokens := map[int64]string{1: devToken(t, 1), peer: devToken(t, peer)}
	get := func(user int64, path string) (hit bool, body string) {
		t.Helper()
		res, body := httpDo(t, http.DefaultClient, "GET", edgeBase+path, "", "Authorization", "Bearer "+tokens[user])
		if res.StatusCode != http.StatusOK {
			t.Fatalf("user %d GET %s: %d %s", user, path, res.StatusCode, body)
		}
		return strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit"), body
	}
	// stored reads path twice: the second read must be a hit.
	stored := func(user int64, path string) string {
		t.Helper()
		get(user, path)
		hit, body := get(user, path)
		if !hit {
			t.Fatalf("user %d GET %s again: not a hit; the test needs it stored", user, path)
		}
		return body
	}
	messages := fmt.Sprintf("/api/conversations/%d/messages", conv)
	peerMessages := stored(peer, messages)
	peerInbox := stored(peer, "/api/conversations")
	senderInbox := stored(1, "/api/conversations")

	sender, receiver := dialEdge(t, edgeBase, tokens[1]), dialEdge(t, edgeBase, tokens[peer])
	const body = "sent over the socket, read over REST"
	send := fmt.Sprintf(`{"type":"send","conversation_id":%d,"body":%q,"client_msg_id":"rt-purge-1"}`, conv, body)
	if err := sender.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	var sent struct {
		Message struct {
			ID int64 `json:"id"`
		} `json:"message"`
	}
	if raw := readFrame(t, sender, "sent", nil); json.Unmarshal(raw, &sent) != nil || sent.Message.ID == 0 {
		t.Fatalf("sent frame %s", raw)
	}
	// `sent` came after the purge: the very next reads are fresh.
	for _, r := range []struct {
		user      int64
		path, was string
	}{{peer, messages, peerMessages}, {peer, "/api/conversations", peerInbox}, {1, "/api/conversations", senderInbox}} {
		hit, now := get(r.user, r.path)
		if hit || now == r.was || !strings.Contains(now, body) {
			t.Fatalf("user %d GET %s after a socket send: hit=%v, changed=%v, holds the message=%v; want a fresh read with it",
				r.user, r.path, hit, now != r.was, strings.Contains(now, body))
		}
	}

	// A read receipt over the socket: the reader's inbox (unread count) is
	// purged. No frame answers a read, so wait for the reader's own read
	// event, then give the purge (which follows the origin's answer, not
	// the event) a bounded time; without it the entry is a hit for its
	// five minutes.
	unreadInbox := stored(peer, "/api/conversations")
	read := fmt.Sprintf(`{"type":"read","conversation_id":%d,"message_id":%d}`, conv, sent.Message.ID)
	if err := receiver.WriteMessage(websocket.TextMessage, []byte(read)); err != nil {
		t.Fatal(err)
	}
	readFrame(t, receiver, "event", func(f []byte) bool { return strings.Contains(string(f), `"kind":"read"`) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		hit, now := get(peer, "/api/conversations")
		if !hit && now != unreadInbox {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader's inbox after a read over the socket: hit=%v, changed=%v; want a fresh read", hit, now != unreadInbox)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
