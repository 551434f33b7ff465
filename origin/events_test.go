package origin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
)

// recordingBus is a Publisher that keeps what it was given (or refuses it
// with fail), for tests of what the origin publishes.
type recordingBus struct {
	mu   sync.Mutex
	msgs []eventbus.Message
	fail error
}

// Publish implements eventbus.Publisher.
func (b *recordingBus) Publish(_ context.Context, msgs ...eventbus.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.msgs = append(b.msgs, msgs...)
	return nil
}

// of returns what was published for user, in order.
func (b *recordingBus) of(user int64) []eventbus.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []eventbus.Message
	for _, m := range b.msgs {
		if m.UserID == user {
			out = append(out, m)
		}
	}
	return out
}

// eventsBody is GET /api/events' answer with each event kept as sent.
type eventsBody struct {
	Events  []json.RawMessage `json:"events"`
	LastSeq int64             `json:"last_seq"`
}

func (a *api) events(tok, query string, code int) eventsBody {
	a.t.Helper()
	r := a.do("GET", "/api/events"+query, tok, "")
	expect(a.t, r, code, "events"+query)
	var b eventsBody
	if code == 200 {
		if r.hdr.Get("Cache-Control") != "private, no-store" || r.hdr.Get("Vary") != "Authorization" {
			a.t.Fatalf("events headers %v", r.hdr)
		}
		r.json(a.t, &b)
		if b.Events == nil {
			a.t.Fatalf("events%s: %s has no events array", query, r.body)
		}
	}
	return b
}

// matchViaAPI makes a and b match through POST /api/swipes and returns the
// match.
func (a *api) matchViaAPI(ua, ub int64) (matchID, conv int64) {
	a.t.Helper()
	expect(a.t, a.do("POST", "/api/swipes", token(a.t, ua), fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, ub)), 201, "like")
	r := a.do("POST", "/api/swipes", token(a.t, ub), fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, ua))
	expect(a.t, r, 201, "like back")
	var sw struct {
		Match struct {
			ID             int64 `json:"id"`
			ConversationID int64 `json:"conversation_id"`
		} `json:"match"`
	}
	r.json(a.t, &sw)
	return sw.Match.ID, sw.Match.ConversationID
}

func TestEventsAPI(t *testing.T) {
	onEachStore(t, testEventsAPI)
}

func testEventsAPI(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
	eve := mkUser(t, st, "eve", 30, "woman", 1, 1.02, nil)
	ta, tb := token(t, ann), token(t, bob)
	expect(t, a.do("GET", "/api/events", "", ""), 401, "events without a token")
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?since=-1", "?since=abc", "?since=1;2", "?since=1.5"} {
		expect(t, a.do("GET", "/api/events"+q, ta, ""), 400, "events"+q)
	}
	if b := a.events(token(t, eve), "", 200); len(b.Events) != 0 || b.LastSeq != 0 {
		t.Fatalf("a user without events: %+v", b)
	}
	_, conv := a.matchViaAPI(ann, bob)
	if b := a.events(ta, "", 200); len(b.Events) != 1 || b.LastSeq != 1 || !bytes.Contains(b.Events[0], []byte(`"kind":"match"`)) {
		t.Fatalf("after the match: %s", b.Events)
	}
	for i := 0; i < 3; i++ {
		r := a.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), ta, fmt.Sprintf(`{"body":"m%d","client_msg_id":"c%d"}`, i, i))
		expect(t, r, 201, "send")
		var m store.Message
		r.json(t, &m)
		// A message purges the conversation's lists and both members'
		// inboxes (cached per user at the edge), nothing else.
		wantPurge := strings.Join([]string{contract.ConversationTag(conv), contract.ConversationsTag(ann), contract.ConversationsTag(bob)}, " ")
		if m.ConvSeq != int64(i+1) || r.hdr.Get("Spark-Purge") != wantPurge {
			t.Fatalf("send %d: conv_seq %d, Spark-Purge %q, want %q", i, m.ConvSeq, r.hdr.Get("Spark-Purge"), wantPurge)
		}
	}
	r := a.do("POST", fmt.Sprintf("/api/conversations/%d/read", conv), tb, `{"message_id":1}`)
	expect(t, r, 204, "read")
	if got, want := r.hdr.Get("Spark-Purge"), contract.ConversationsTag(bob); got != want { // the reader's unread count
		t.Fatalf("read receipt purges %q, want %q", got, want)
	}
	// bob: the match, three messages, his read receipt.
	b := a.events(tb, "?since=1&limit=2", 200)
	if len(b.Events) != 2 || b.LastSeq != 5 || !bytes.Contains(b.Events[0], []byte(`"seq":2,"kind":"message"`)) ||
		!bytes.Contains(b.Events[1], []byte(`"conv_seq":2`)) {
		t.Fatalf("bob's page: %s, last %d", b.Events, b.LastSeq)
	}
	if b := a.events(tb, "?since=5", 200); len(b.Events) != 0 || b.LastSeq != 5 {
		t.Fatalf("nothing new: %+v", b)
	}
	r = a.do("GET", "/api/events?since=6", tb, "")
	expect(t, r, 410, "since beyond the log")
	var gone struct {
		LastSeq int64 `json:"last_seq"`
	}
	r.json(t, &gone)
	if problemCode(t, r) != "events-gone" || r.hdr.Get("Cache-Control") != "no-store" || gone.LastSeq != 5 {
		t.Fatalf("410: %v %s", r.hdr, r.body)
	}
	if _, err := st.PruneEvents(context.Background(), store.Retention{KeepLast: 1, KeepFor: time.Minute, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r = a.do("GET", "/api/events", tb, "")
	expect(t, r, 410, "events from before retention")
	if r.json(t, &gone); gone.LastSeq != 5 {
		t.Fatalf("410 after pruning: %s", r.body)
	}
	if b := a.events(tb, "?since=4", 200); len(b.Events) != 1 || b.LastSeq != 5 || !bytes.Contains(b.Events[0], []byte(`"kind":"read"`)) {
		t.Fatalf("the kept event: %+v", b)
	}
}

// TestEventsPublished: each write's events reach the bus once committed,
// to the right users only, in order, as the very bytes GET /api/events
// serves.
func TestEventsPublished(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			bus := &recordingBus{}
			a := newAPIWith(t, origin.ServerOptions{Store: st, Events: bus})
			ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
			bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
			eve := mkUser(t, st, "eve", 30, "woman", 1, 1.02, nil)
			match, conv := a.matchViaAPI(ann, bob)
			expect(t, a.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), token(t, bob), `{"body":"hi","client_msg_id":"1"}`), 201, "send")
			expect(t, a.do("POST", fmt.Sprintf("/api/conversations/%d/read", conv), token(t, ann), `{"message_id":1}`), 204, "read")
			expect(t, a.do("POST", fmt.Sprintf("/api/users/%d/block", eve), token(t, ann), ""), 204, "block without a match")
			expect(t, a.do("DELETE", fmt.Sprintf("/api/matches/%d", match), token(t, ann), ""), 204, "unmatch")
			for _, u := range []int64{ann, bob} {
				var got []eventbus.Message
				testutil.Eventually(t, 5*time.Second, fmt.Sprintf("4 events of %d published", u), func() bool {
					got = bus.of(u)
					return len(got) >= 4
				})
				logged := a.events(token(t, u), "", 200)
				if len(got) != 4 || len(logged.Events) != 4 {
					t.Fatalf("user %d: %d published, %d logged", u, len(got), len(logged.Events))
				}
				for i, m := range got {
					if m.Seq != int64(i+1) || !bytes.Equal(m.Payload, logged.Events[i]) {
						t.Fatalf("user %d, event %d: published seq %d %s, logged %s", u, i, m.Seq, m.Payload, logged.Events[i])
					}
				}
			}
			if got := bus.of(eve); len(got) != 0 {
				t.Fatalf("eve got %d events", len(got))
			}
		})
	}
}

// TestPublishFailureNeverFailsTheWrite: with a bus that refuses everything
// the writes succeed, their events stay in the log, and the failures are
// counted.
func TestPublishFailureNeverFailsTheWrite(t *testing.T) {
	st := openPostGIS(t)
	bus := &recordingBus{fail: errors.New("bus down")}
	a := newAPIWith(t, origin.ServerOptions{Store: st, Events: bus})
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
	_, conv := a.matchViaAPI(ann, bob)
	expect(t, a.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), token(t, ann), `{"body":"hi","client_msg_id":"1"}`), 201, "send")
	if b := a.events(token(t, bob), "", 200); len(b.Events) != 2 {
		t.Fatalf("bob's log: %s", b.Events)
	}
	errorsTotal := regexp.MustCompile(`(?m)^spark_origin_event_publish_errors_total (\d+)`)
	testutil.Eventually(t, 5*time.Second, "4 publish errors counted", func() bool {
		m := errorsTotal.FindStringSubmatch(a.do("GET", "/metrics", "", "").body)
		return m != nil && m[1] == "4"
	})
}

// TestBatchedSends: concurrent sends share transactions; each gets its own
// answer: a retry racing its original is stored once, an outsider fails
// alone, every sender's messages keep their order, and the conversation is
// numbered 1..n without gaps.
func TestBatchedSends(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			a := newAPIWith(t, origin.ServerOptions{Store: st, MessageBatch: &origin.MessageBatchOptions{Size: 16, Wait: 50 * time.Millisecond, Lanes: 1}})
			ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
			bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
			eve := mkUser(t, st, "eve", 30, "woman", 1, 1.02, nil)
			_, conv := a.matchViaAPI(ann, bob)
			path := fmt.Sprintf("/api/conversations/%d/messages", conv)
			type result struct {
				who  string
				code int
				msg  store.Message
			}
			results := make(chan result, 64)
			var wg sync.WaitGroup
			start := make(chan struct{})
			run := func(who string, tok string, body string) {
				defer wg.Done()
				<-start
				r := a.do("POST", path, tok, body)
				var m store.Message
				if r.code < 300 {
					r.json(t, &m)
				}
				results <- result{who, r.code, m}
			}
			for i := 0; i < 4; i++ { // the same message four times at once
				wg.Add(1)
				go run("dup", token(t, ann), `{"body":"once","client_msg_id":"dup"}`)
			}
			for i := 0; i < 2; i++ {
				wg.Add(1)
				go run("eve", token(t, eve), fmt.Sprintf(`{"body":"intrude","client_msg_id":"e%d"}`, i))
			}
			for _, u := range []int64{ann, bob} { // two senders, each in order
				wg.Add(1)
				go func(u int64) {
					defer wg.Done()
					<-start
					tok := token(t, u)
					for i := 0; i < 10; i++ {
						r := a.do("POST", path, tok, fmt.Sprintf(`{"body":"%d","client_msg_id":"s%d"}`, i, i))
						var m store.Message
						r.json(t, &m)
						results <- result{strconv.FormatInt(u, 10), r.code, m}
					}
				}(u)
			}
			close(start)
			wg.Wait()
			close(results)
			var dupID int64
			created, lastOf := 0, map[string]int64{}
			for r := range results {
				switch {
				case r.who == "eve":
					if r.code != 404 {
						t.Fatalf("outsider send: %d", r.code)
					}
					continue
				case r.who == "dup" && r.code == 200:
				case r.code != 201:
					t.Fatalf("%s: status %d", r.who, r.code)
				}
				if r.who == "dup" {
					if dupID != 0 && r.msg.ID != dupID {
						t.Fatalf("the same client_msg_id stored twice: %d and %d", dupID, r.msg.ID)
					}
					dupID = r.msg.ID
				} else if r.msg.ConvSeq <= lastOf[r.who] {
					t.Fatalf("sender %s: conv_seq %d after %d", r.who, r.msg.ConvSeq, lastOf[r.who])
				} else {
					lastOf[r.who] = r.msg.ConvSeq
				}
				if r.code == 201 {
					created++
				}
			}
			if created != 21 {
				t.Fatalf("%d messages created, want 21", created)
			}
			seqs := map[int64]bool{}
			for _, e := range a.events(token(t, bob), "", 200).Events {
				var ev struct {
					Kind string        `json:"kind"`
					Data store.Message `json:"data"`
				}
				if err := json.Unmarshal(e, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Kind == "message" {
					seqs[ev.Data.ConvSeq] = true
				}
			}
			for i := int64(1); i <= 21; i++ {
				if !seqs[i] {
					t.Fatalf("conv_seq %d missing from bob's log (%v)", i, seqs)
				}
			}
			// Every send went through a batch (the sum of batch sizes is the
			// number of sends). Whether concurrent HTTP sends happen to meet in
			// one batch depends on scheduling; the grouping itself is held
			// deterministically by TestBatcherGroupsQueuedSends.
			body := a.do("GET", "/metrics", "", "").body
			sum := regexp.MustCompile(`(?m)^spark_origin_message_batch_size_sum (\d+)`).FindStringSubmatch(body)
			count := regexp.MustCompile(`(?m)^spark_origin_message_batch_size_count (\d+)`).FindStringSubmatch(body)
			if sum == nil || count == nil {
				t.Fatal("no spark_origin_message_batch_size in /metrics")
			}
			if n, _ := strconv.Atoi(sum[1]); n != 26 {
				t.Fatalf("batches held %d sends, want all 26", n)
			}
			if n, _ := strconv.Atoi(count[1]); n < 1 || n > 26 {
				t.Fatalf("%d batches for 26 sends", n)
			}
		})
	}
}

// TestRunPrunesEvents: retention runs in the background of `spark origin`:
// with a count of 1 and an age of a nanosecond, demo user 1's log shrinks
// to its newest event, and asking from before it becomes a 410.
func TestRunPrunesEvents(t *testing.T) {
	addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 20, DemoSeed: 3,
		Events: origin.EventsConfig{KeepLast: 1, KeepFor: time.Nanosecond, PruneEvery: 20 * time.Millisecond}})
	tok, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	get := func(since int) (int, eventsBody) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/events?since=%d", addr, since), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b eventsBody
		_ = json.NewDecoder(res.Body).Decode(&b)
		return res.StatusCode, b
	}
	testutil.Eventually(t, 10*time.Second, "user 1's log pruned", func() bool {
		code, _ := get(0)
		return code == 410
	})
	for since := 1; since < 100; since++ { // the kept event: the only since answering with one
		if code, b := get(since); code == 200 {
			if len(b.Events) != 1 || b.LastSeq != int64(since+1) {
				t.Fatalf("after pruning, since=%d: %d events, last_seq %d", since, len(b.Events), b.LastSeq)
			}
			return
		}
	}
	t.Fatal("no event kept")
}
