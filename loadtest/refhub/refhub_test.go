package refhub_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/chat"
	"github.com/spark-edge/spark/loadtest/refhub"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// TestChatAgainstRefhub: the chat scenario against two reference hubs'
// worth of URLs (one hub; the drops resume on the same process) delivers
// every message exactly once and relays typing.
func TestChatAgainstRefhub(t *testing.T) {
	srv := httptest.NewServer(refhub.New(refhub.Options{Secret: loadtest.DevJWTSecret, FirstUser: 101}))
	defer srv.Close()
	res, err := chat.Run(context.Background(), chat.Config{Edges: []string{srv.URL}, Users: 20, FirstUser: 101, Pairing: chat.PairingFixed,
		Duration: 2 * time.Second, MessageRate: 50, TypingRate: 50, DropShare: 0.2, Drain: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Chat.Messages
	if m.Sent < 50 || m.Received != m.Sent || m.Lost != 0 || m.Duplicated != 0 || m.Misdelivered != 0 || m.Unconfirmed != 0 {
		t.Fatalf("ledger %+v: want every message received once", m)
	}
	if res.Chat.Drops != 4 || res.Chat.Resumes < 4 || res.Chat.Typing.Received == 0 || res.Chat.Typing.Misdelivered != 0 {
		t.Fatalf("drops %d resumes %d typing %+v", res.Chat.Drops, res.Chat.Resumes, res.Chat.Typing)
	}
}

// TestRefhubRefuses: no token, a bad since, a conversation not the user's.
func TestRefhubRefuses(t *testing.T) {
	srv := httptest.NewServer(refhub.New(refhub.Options{Secret: loadtest.DevJWTSecret}))
	defer srv.Close()
	if _, err := sparkv1.Dial(context.Background(), sparkv1.Options{Edge: srv.URL, Token: "nope"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: %v", err)
	}
	tok, _ := loadtest.MintToken(loadtest.DevJWTSecret, 1, time.Hour, time.Now())
	c, err := sparkv1.Dial(context.Background(), sparkv1.Options{Edge: srv.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(2, "hi", "x1"); err != nil { // conversation 2 is users 3 and 4
		t.Fatal(err)
	}
	fs, err := c.ReadFrames()
	if err != nil || len(fs) != 1 || fs[0].Code != "not_member" {
		t.Fatalf("%+v %v", fs, err)
	}
}
