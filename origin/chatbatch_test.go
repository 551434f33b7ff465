package origin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
)

// TestSendBatch runs POST /api/messages/batch on both stores.
func TestSendBatch(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("OrderAndIdempotencyUnderConcurrency", func(t *testing.T) { testSendBatchConcurrent(t, mk(t)) })
			t.Run("FailuresAlone", func(t *testing.T) { testSendBatchFailures(t, mk(t)) })
		})
	}
}

// batchItem is one message of a batch request.
type batchItem struct {
	Token          string `json:"token"`
	ConversationID int64  `json:"conversation_id"`
	Body           string `json:"body"`
	ClientMsgID    string `json:"client_msg_id"`
}

// batchResult is one message's answer.
type batchResult struct {
	Status  int             `json:"status"`
	Message *store.Message  `json:"message"`
	Problem *origin.Problem `json:"problem"`
	Purge   []string        `json:"purge"`
}

// postBatch posts items and returns the status and the results (safe from
// any goroutine: it reports instead of failing).
func postBatch(url string, items []batchItem) (int, []batchResult, error) {
	body, err := json.Marshal(map[string]any{"messages": items})
	if err != nil {
		return 0, nil, err
	}
	res, err := http.Post(url+"/api/messages/batch", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var answer struct {
		Results []batchResult `json:"results"`
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil, nil
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return res.StatusCode, nil, fmt.Errorf("decode the answer: %w", err)
	}
	return res.StatusCode, answer.Results, nil
}

// matchPair makes users a and b a match and returns its conversation.
func matchPair(t *testing.T, a *api, ta, tb string, ida, idb int64) int64 {
	t.Helper()
	expect(t, a.do("POST", "/api/swipes", ta, fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, idb)), 201, "like")
	r := a.do("POST", "/api/swipes", tb, fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, ida))
	expect(t, r, 201, "mutual like")
	var sw struct {
		Match struct {
			ConversationID int64 `json:"conversation_id"`
		} `json:"match"`
	}
	r.json(t, &sw)
	if sw.Match.ConversationID == 0 {
		t.Fatalf("no match: %s", r.body)
	}
	return sw.Match.ConversationID
}

// Concurrent batches from several "edges", each mixing conversations and
// sending the same conversation's messages in order, plus the same
// client_msg_ids posted twice at once: every message is stored once, each
// conversation's conv_seq is 1..n in the order each sender sent, a retry
// gets the stored message (200, same id).
func testSendBatchConcurrent(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	const pairs, edges, rounds = 4, 3, 6
	type pair struct {
		conv   int64
		tokens [2]string
		ids    [2]int64
	}
	ps := make([]pair, pairs)
	for p := range ps {
		x := mkUser(t, st, fmt.Sprintf("x%d", p), 30, "woman", 1, 1+float64(p)/100, nil)
		y := mkUser(t, st, fmt.Sprintf("y%d", p), 30, "man", 1, 1.005+float64(p)/100, nil)
		ps[p].ids = [2]int64{x, y}
		ps[p].tokens = [2]string{token(t, x), token(t, y)}
		ps[p].conv = matchPair(t, a, ps[p].tokens[0], ps[p].tokens[1], x, y)
	}
	// Edge e sends, in each round, one message per pair from side e%2, in
	// a batch; its rounds go one after another (as a connection sends one
	// message per conversation at a time). Edges 0 and 2 send the same
	// client_msg_ids from the same side: each message is posted twice at
	// once and must be stored once.
	results := make([][]batchResult, edges*rounds)
	var wg sync.WaitGroup
	errs := make(chan error, edges*rounds)
	for e := range edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			side := e % 2
			for r := range rounds {
				items := make([]batchItem, pairs)
				for p := range pairs {
					items[p] = batchItem{Token: ps[p].tokens[side], ConversationID: ps[p].conv, Body: fmt.Sprintf("s%d r%d", side, r),
						ClientMsgID: fmt.Sprintf("s%d-r%d", side, r)}
				}
				status, res, err := postBatch(a.srv.URL, items)
				if err != nil || status != http.StatusOK || len(res) != pairs {
					errs <- fmt.Errorf("edge %d round %d: status %d, %d results, %v", e, r, status, len(res), err)
					return
				}
				results[e*rounds+r] = res
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every answer is a stored message of the right conversation; the
	// twice-posted ones name the same message, one 201 and one 200.
	byKey := map[string][]batchResult{}
	for i, res := range results {
		e, r := i/rounds, i%rounds
		for p, x := range res {
			if x.Status != http.StatusCreated && x.Status != http.StatusOK || x.Message == nil || x.Message.ConversationID != ps[p].conv ||
				x.Message.SenderID != ps[p].ids[e%2] || x.Message.Body != fmt.Sprintf("s%d r%d", e%2, r) {
				t.Fatalf("edge %d round %d pair %d: %+v", e, r, p, x)
			}
			key := fmt.Sprintf("%d/%s", ps[p].conv, x.Message.ClientMsgID)
			byKey[key] = append(byKey[key], x)
		}
	}
	for key, xs := range byKey {
		created := 0
		for _, x := range xs {
			if x.Status == http.StatusCreated {
				created++
			}
			if x.Message.ID != xs[0].Message.ID {
				t.Fatalf("%s stored twice: ids %d and %d", key, xs[0].Message.ID, x.Message.ID)
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d answers 201 of %d, want exactly one", key, created, len(xs))
		}
	}
	// Each conversation holds rounds messages per side, conv_seq 1..n
	// without gaps, and each side's rounds in order.
	for _, p := range ps {
		var page struct {
			Messages []store.Message `json:"messages"`
		}
		a.do("GET", fmt.Sprintf("/api/conversations/%d/messages?limit=100", p.conv), p.tokens[0], "").json(t, &page)
		if len(page.Messages) != 2*rounds {
			t.Fatalf("conversation %d holds %d messages, want %d", p.conv, len(page.Messages), 2*rounds)
		}
		seqs := map[int64]bool{}
		last := map[int64]int{}
		for i := len(page.Messages) - 1; i >= 0; i-- { // oldest first
			m := page.Messages[i]
			seqs[m.ConvSeq] = true
			var side, r int
			if _, err := fmt.Sscanf(m.Body, "s%d r%d", &side, &r); err != nil {
				t.Fatal(err)
			}
			if prev, ok := last[m.SenderID]; ok && r != prev+1 {
				t.Fatalf("conversation %d: sender %d's round %d after round %d", p.conv, m.SenderID, r, prev)
			}
			last[m.SenderID] = r
		}
		for s := int64(1); s <= 2*rounds; s++ {
			if !seqs[s] {
				t.Fatalf("conversation %d: conv_seq %d missing (%v)", p.conv, s, seqs)
			}
		}
	}
}

// A bad token, a conversation not the sender's, an empty body, a missing
// client_msg_id and a repeated one inside the batch each get the single
// route's answer; the good messages around them are stored. A batch that
// is not one (empty, too large, malformed) is refused whole.
func testSendBatchFailures(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
	eve := mkUser(t, st, "eve", 30, "woman", 1, 1.02, nil)
	ta, tb, te := token(t, ann), token(t, bob), token(t, eve)
	conv := matchPair(t, a, ta, tb, ann, bob)
	forged, _ := origin.IssueToken("another-secret-another-secret-000", ann, time.Hour, time.Now())
	items := []batchItem{
		{Token: ta, ConversationID: conv, Body: "one", ClientMsgID: "a1"},
		{Token: forged, ConversationID: conv, Body: "forged", ClientMsgID: "f1"},
		{Token: te, ConversationID: conv, Body: "not mine", ClientMsgID: "e1"},
		{Token: tb, ConversationID: conv, Body: "", ClientMsgID: "b0"},
		{Token: tb, ConversationID: conv, Body: "no id"},
		{Token: tb, ConversationID: 0, Body: "no conversation", ClientMsgID: "b9"},
		{Token: tb, ConversationID: conv, Body: "two", ClientMsgID: "b1"},
		{Token: ta, ConversationID: conv, Body: "one", ClientMsgID: "a1"}, // the same message again
	}
	status, res, err := postBatch(a.srv.URL, items)
	if err != nil || status != http.StatusOK || len(res) != len(items) {
		t.Fatalf("status %d, %d results, %v", status, len(res), err)
	}
	want := []int{201, 401, 404, 400, 400, 400, 201, 200}
	for i, x := range res {
		if x.Status != want[i] {
			t.Fatalf("message %d (%s): status %d, want %d: %+v %+v", i, items[i].Body, x.Status, want[i], x.Message, x.Problem)
		}
		if x.Status >= 400 && (x.Problem == nil || x.Problem.Status != x.Status || x.Message != nil) {
			t.Fatalf("message %d: a failure without its problem: %+v", i, x)
		}
	}
	if res[0].Message.ConvSeq != 1 || res[6].Message.ConvSeq != 2 || res[7].Message.ID != res[0].Message.ID {
		t.Fatalf("stored: %+v, %+v, retry %+v", res[0].Message, res[6].Message, res[7].Message)
	}
	// A stored message carries the tags the single route's Spark-Purge
	// names for the same send; a retry and a failure carry none.
	single := a.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), tb, `{"body":"three","client_msg_id":"b2"}`)
	expect(t, single, 201, "single send")
	wantTags := contract.AppendTags(nil, single.hdr.Values(contract.SparkPurge))
	slices.Sort(wantTags)
	if len(wantTags) != 3 || !slices.Contains(wantTags, contract.ConversationTag(conv)) {
		t.Fatalf("the single route purges %q, want the conversation and both inboxes", wantTags)
	}
	for _, i := range []int{0, 6} {
		got := slices.Sorted(slices.Values(res[i].Purge))
		if !slices.Equal(got, wantTags) {
			t.Fatalf("message %d purges %q, the single route %q", i, got, wantTags)
		}
	}
	for i, x := range res {
		if x.Status != http.StatusCreated && x.Purge != nil {
			t.Fatalf("message %d (status %d) purges %q", i, x.Status, x.Purge)
		}
	}
	for _, bad := range []string{`{"messages":[]}`, `{"messages":[{"token":"x"}],"extra":1}`, `not json`,
		`{"messages":[` + strings.Repeat(`{"token":"x","conversation_id":1,"body":"b","client_msg_id":"c"},`, origin.MaxSendBatchMessages) + `{"token":"x"}]}`} {
		expect(t, a.do("POST", "/api/messages/batch", "", bad), 400, "batch "+bad[:min(len(bad), 40)])
	}
}
