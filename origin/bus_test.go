package origin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/redisconn"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// testRedisAddr is the Redis server every test run here shares.
const testRedisAddr = "127.0.0.1:6379"

// On PostGIS the origin refuses a weak events token (the development one,
// one shorter than 32 bytes), naming the flag and never printing the
// token; the embedded store takes any, and defaults to the development one.
func TestRunPostGISRefusesWeakEventsToken(t *testing.T) {
	pgtest.Open(t, "test_origin_auth")
	base := origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.SchemaURL(t, "test_origin_auth"), PhotoDir: t.TempDir(),
		JWTSecret: strings.Repeat("j", 32)}
	for name, tok := range map[string]string{
		"development token": origin.DevEventsToken,
		"31 bytes":          strings.Repeat("e", 31),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.Events.Token = tok
			err := runRefused(t, cfg)
			if !strings.Contains(err.Error(), "--events-token") || !strings.Contains(err.Error(), "SPARK_EVENTS_TOKEN") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatalf("error prints the token: %v", err)
			}
		})
	}
	cfg := base
	cfg.Events.Token = strings.Repeat("e", 32)
	startOrigin(t, cfg)

	for _, tc := range []struct {
		token, db   string
		redis       bool
		want        string
		dev, refuse bool
	}{
		{"", "", false, origin.DevEventsToken, true, false}, // embedded default
		{"short", "", false, "short", false, false},         // embedded: any
		{"", "postgres://x", false, "", false, false},       // PostGIS without a token: no stream
		{"", "postgres://x", true, "", false, false},        // Redis: no token needed
		{"short", "postgres://x", true, "", false, false},   // Redis: the token is not used
		{"short", "postgres://x", false, "", false, true},   // weak on PostGIS
		{strings.Repeat("t", 40), "postgres://x", false, strings.Repeat("t", 40), false, false},
	} {
		got, dev, err := origin.ResolveEventsToken(tc.token, tc.db, tc.redis)
		if got != tc.want || dev != tc.dev || (err != nil) != tc.refuse {
			t.Fatalf("ResolveEventsToken(%q, %q, %v) = %q, %v, %v", tc.token, tc.db, tc.redis, got, dev, err)
		}
	}
}

// demoConversation returns demo user 1's first conversation and the user's
// newest event seq, through the API.
func demoConversation(t *testing.T, addr, tok string) (conv, lastSeq int64) {
	t.Helper()
	var inbox struct {
		Conversations []struct {
			ID int64 `json:"id"`
		} `json:"conversations"`
	}
	getJSON(t, "http://"+addr+"/api/conversations", tok, &inbox)
	var page eventsBody
	getJSON(t, "http://"+addr+"/api/events", tok, &page)
	if len(inbox.Conversations) == 0 || page.LastSeq == 0 {
		t.Fatalf("demo user 1: %+v, last_seq %d", inbox, page.LastSeq)
	}
	return inbox.Conversations[0].ID, page.LastSeq
}

func getJSON(t *testing.T, url, tok string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// checkDelivered makes a subscriber (of the transport under test) for demo
// user 1, sends a message as user 1 and checks the subscriber got its
// event: the next seq, the bytes GET /api/events serves.
func checkDelivered(t *testing.T, addr string, subscriber func(eventbus.Handler) (eventbus.Subscriber, error)) {
	t.Helper()
	got := make(chan eventbus.Message, 16)
	sub, err := subscriber(func(m eventbus.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Subscribe(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	tok, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conv, last := demoConversation(t, addr, tok)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/api/conversations/%d/messages", addr, conv),
		strings.NewReader(`{"body":"over the bus","client_msg_id":"bus-1"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("send: %v %v", res, err)
	}
	res.Body.Close()
	select {
	case m := <-got:
		var logged eventsBody
		getJSON(t, fmt.Sprintf("http://%s/api/events?since=%d", addr, last), tok, &logged)
		if m.UserID != 1 || m.Seq != last+1 || len(logged.Events) != 1 || !bytes.Equal(m.Payload, logged.Events[0]) {
			t.Fatalf("delivered user %d seq %d %s; logged %s (after %d)", m.UserID, m.Seq, m.Payload, logged.Events, last)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event delivered")
	}
}

// TestRunPublishesToStream: `spark origin` on the embedded store serves its
// event stream with the development token; an edge's StreamClient
// subscribed to demo user 1 gets the user's event as the send commits. A
// wrong token is refused.
func TestRunPublishesToStream(t *testing.T) {
	addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 20, DemoSeed: 3})
	req, _ := http.NewRequest("GET", "http://"+addr+origin.StreamPath, nil)
	req.Header.Set("Authorization", "Bearer wrong-token")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stream with a wrong token: %v %v", res, err)
	}
	checkDelivered(t, addr, func(h eventbus.Handler) (eventbus.Subscriber, error) {
		return eventbus.NewStreamClient(eventbus.StreamClientOptions{URL: "http://" + addr, Token: origin.DevEventsToken, Logger: quietLog()}, h)
	})
}

// TestRunPublishesToRedis: with --events-redis the origin publishes through
// Redis (the shared test server, a prefix of this test's own).
func TestRunPublishesToRedis(t *testing.T) {
	prefix := fmt.Sprintf("rtorigin-%d:", time.Now().UnixNano())
	addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 20, DemoSeed: 3,
		Events: origin.EventsConfig{Redis: []string{testRedisAddr}, RedisPrefix: prefix}})
	checkDelivered(t, addr, func(h eventbus.Handler) (eventbus.Subscriber, error) {
		return eventbus.NewRedisSubscriber(eventbus.RedisOptions{Options: redisconn.Options{Addrs: []string{testRedisAddr}}, KeyPrefix: prefix, Logger: quietLog()}, h)
	})
}

// The server answers Online from the bus's presence: a user is online while
// an edge subscribes to them.
func TestServerOnlineFollowsPresence(t *testing.T) {
	ss, err := eventbus.NewStreamServer(eventbus.StreamServerOptions{Token: strings.Repeat("p", 32), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	st := memory.New()
	auth, _ := origin.NewAuthenticator(testSecret, nil, nil)
	srv, err := origin.NewServer(origin.ServerOptions{Store: st, Auth: auth, Events: ss, Presence: ss, EventStream: ss})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx := context.Background()
	if on, err := srv.Online(ctx, 7); err != nil || on {
		t.Fatalf("before any edge: %v %v", on, err)
	}
	c, err := eventbus.NewStreamClient(eventbus.StreamClientOptions{URL: hs.URL, Token: strings.Repeat("p", 32), Logger: quietLog()},
		func(eventbus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, 7); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "user 7 online", func() bool { on, _ := srv.Online(ctx, 7); return on })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "user 7 offline", func() bool { on, _ := srv.Online(ctx, 7); return !on })
}
