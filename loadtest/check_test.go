package loadtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// obs builds an observed response to path at sent, acknowledged at acked.
func obs(user int64, path string, sent, acked time.Time, status int, etag, body string) observed {
	u, _ := url.Parse("http://127.0.0.1" + path)
	h := http.Header{}
	if etag != "" {
		h.Set("ETag", etag)
	}
	return observed{user: user, req: &http.Request{URL: u}, sent: sent, acked: acked, status: status, header: h, body: []byte(body)}
}

func TestLedgerCountsOnlyReadsOlderThanAcknowledgedWrites(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := NewLedger()
	must := func(check string, o observed) {
		t.Helper()
		if err := l.Observe(check, o); err != nil {
			t.Fatalf("%s: %v", check, err)
		}
	}
	// Writes, acknowledged at 100 ms.
	must(CheckSwipe, obs(1, "/api/swipes", at(0), at(100), 201, "", `{"target_id": 7, "direction": "like"}`))
	must(CheckBlock, obs(1, "/api/users/8/block", at(0), at(100), 204, "", ""))
	must(CheckProfileUpdate, obs(9, "/api/users/me/profile", at(0), at(100), 200, `"u9-v3"`, `{}`))
	must(CheckSend, obs(1, "/api/conversations/5/messages", at(0), at(100), 201, "",
		`{"id": 42, "conversation_id": 5, "created_at": "2026-12-07T12:00:00.05Z"}`))
	// A failed write records nothing.
	must(CheckSwipe, obs(1, "/api/swipes", at(0), at(100), 500, "", `{"target_id": 11}`))

	// Reads sent before the acknowledgements: whatever they hold is fine.
	must(CheckDeck, obs(1, "/api/matches/suggestions", at(50), at(150), 200, "", `{"suggestions": [{"id": 7}, {"id": 8}]}`))
	must(CheckProfile, obs(2, "/api/users/9/profile", at(50), at(150), 200, `"u9-v2"`, `{}`))
	must(CheckMessages, obs(1, "/api/conversations/5/messages?limit=30", at(50), at(150), 200, "", `{"messages": []}`))
	must(CheckInbox, obs(1, "/api/conversations", at(50), at(150), 200, "", `{"conversations": [{"id": 5, "last_message": null}]}`))
	if r := l.Result(); r.Violations != 0 || r.Checked != 4 {
		t.Fatalf("reads sent before the writes were acknowledged: %+v", r)
	}

	// The same reads sent after: each is a violation.
	must(CheckDeck, obs(1, "/api/matches/suggestions", at(200), at(250), 200, "", `{"suggestions": [{"id": 7}, {"id": 8}, {"id": 11}]}`))
	must(CheckProfile, obs(2, "/api/users/9/profile", at(200), at(250), 200, `W/"u9-v2-gzip"`, `{}`))
	must(CheckMessages, obs(1, "/api/conversations/5/messages?limit=30", at(200), at(250), 200, "", `{"messages": [{"id": 41, "created_at": "2026-12-07T12:00:00.01Z"}]}`))
	must(CheckInbox, obs(1, "/api/conversations", at(200), at(250), 200, "", `{"conversations": [{"id": 5, "last_message": {"id": 41, "created_at": "2026-12-07T12:00:00.01Z"}}]}`))
	r := l.Result()
	if r.Violations != 5 || r.ByCheck[CheckDeck] != 2 || r.ByCheck[CheckProfile] != 1 || r.ByCheck[CheckMessages] != 1 || r.ByCheck[CheckInbox] != 1 {
		t.Fatalf("stale reads: %+v", r)
	}
	if !strings.Contains(strings.Join(r.Examples, "\n"), "suggested 7") {
		t.Errorf("examples: %q", r.Examples)
	}

	// Fresh reads after: no more violations. A full page may leave out a
	// message older than its oldest.
	must(CheckProfile, obs(2, "/api/users/9/profile", at(300), at(350), 200, `"u9-v3"`, `{}`))
	must(CheckMessages, obs(1, "/api/conversations/5/messages?limit=1", at(300), at(350), 200, "", `{"messages": [{"id": 43, "created_at": "2026-12-07T12:00:00.2Z"}]}`))
	must(CheckMessages, obs(1, "/api/conversations/5/messages?limit=30", at(300), at(350), 200, "", `{"messages": [{"id": 42, "created_at": "2026-12-07T12:00:00.05Z"}]}`))
	must(CheckInbox, obs(1, "/api/conversations", at(300), at(350), 200, "", `{"conversations": [{"id": 5, "last_message": {"id": 42, "created_at": "2026-12-07T12:00:00.05Z"}}]}`))
	if got := l.Result().Violations; got != 5 {
		t.Fatalf("fresh reads counted: %d violations", got)
	}
	// An unreadable response is an error, not a pass.
	if err := l.Observe(CheckProfile, obs(2, "/api/users/9/profile", at(400), at(450), 200, `"abc"`, `{}`)); err == nil {
		t.Error("a profile without a versioned ETag passed")
	}
}

func TestDeckIsSwipedThroughLocally(t *testing.T) {
	l := NewLedger()
	vu := NewVU(1, "t", 100)
	v := Vars{vu: vu, ledger: l}
	if _, err := v.DeckLow(); err != nil {
		t.Fatalf("empty deck: refill not due: %v", err)
	}
	if _, err := v.DeckCard(); err == nil {
		t.Fatal("a card from an empty deck")
	}
	now := time.Now()
	body := `{"suggestions": [` + strings.Repeat(`{"id": 3},`, 0) + `{"id": 3}, {"id": 4}, {"id": 5}, {"id": 6}, {"id": 7}, {"id": 8}]}`
	if err := l.Observe(CheckDeck, obs(1, "/api/matches/suggestions", now, now, 200, "", body)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeckLow(); err == nil {
		t.Fatal("six cards: refill due")
	}
	c, err := v.DeckCard()
	if err != nil || c != "3" {
		t.Fatalf("top card = %q, %v", c, err)
	}
	c, _ = v.DeckCard()
	if _, err := v.DeckLow(); err != nil {
		t.Fatalf("four cards: refill not due: %v", err)
	}
	// A refill never deals a card already taken, acknowledged or not.
	if err := l.Observe(CheckDeck, obs(1, "/api/matches/suggestions", now, now, 200, "", body)); err != nil {
		t.Fatal(err)
	}
	if c2, _ := v.DeckCard(); c2 == "3" || c2 == c {
		t.Fatalf("card %s dealt again", c2)
	}
}
