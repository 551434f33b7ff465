package origin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin"
)

// TestPrivateEntriesThroughEdge runs the origin (embedded store) behind a
// real edge on the repository's Caddyfile and checks the per-user entries
// and the purges that keep them true: a user's match list, inbox, message
// list and own profile are stored per credential and hit; a message purges
// both members' inboxes and the conversation's message lists (and nothing
// else); a read mark purges the reader's inbox; a profile update purges the
// owner's own profile; another user's swipe leaves the swiped user's deck
// stored. Each user only ever gets their own entry.
func TestPrivateEntriesThroughEdge(t *testing.T) {
	_, base := startStack(t, 300)
	type user struct {
		id  int64
		tok string
	}
	call := func(u user, method, path, body string) (*http.Response, string) {
		t.Helper()
		h := []string{"Authorization", "Bearer " + u.tok}
		if body != "" {
			h = append(h, "Content-Type", "application/json")
		}
		return httpDo(t, http.DefaultClient, method, base+path, body, h...)
	}
	isHit := func(res *http.Response) bool {
		return strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit")
	}
	// get asks for path twice and wants a miss, then a hit with the same body.
	get := func(u user, path string) string {
		t.Helper()
		res, body := call(u, "GET", path, "")
		if res.StatusCode != 200 || isHit(res) {
			t.Fatalf("user %d GET %s: %d %q, want a 200 miss", u.id, path, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		res, again := call(u, "GET", path, "")
		if res.StatusCode != 200 || !isHit(res) || again != body {
			t.Fatalf("user %d GET %s again: %d %q, want the same body from the edge", u.id, path, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		return body
	}
	// wantHit and wantMiss ask for path once more.
	want := func(u user, path string, hit bool) string {
		t.Helper()
		res, body := call(u, "GET", path, "")
		if res.StatusCode != 200 || isHit(res) != hit {
			t.Fatalf("user %d GET %s: %d %q, want hit=%v", u.id, path, res.StatusCode, res.Header.Get("Cache-Status"), hit)
		}
		return body
	}

	// refreshed waits (at most 10 s) until the edge holds u's path without
	// asking the origin (only-if-cached: a 504 until then, and nothing
	// filled by asking): what a write's Spark-Refresh filled.
	refreshed := func(u user, path string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, body := httpDo(t, http.DefaultClient, "GET", base+path, "", "Authorization", "Bearer "+u.tok, "Cache-Control", "only-if-cached")
			if res.StatusCode == 200 && isHit(res) {
				return body
			}
			if res.StatusCode != http.StatusGatewayTimeout || time.Now().After(deadline) {
				t.Fatalf("user %d GET %s only-if-cached: %d %q, want the entry the write's refresh stored", u.id, path, res.StatusCode, res.Header.Get("Cache-Status"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	a := user{1, devToken(t, 1)}
	var sugg struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
	}
	if err := json.Unmarshal([]byte(get(a, "/api/matches/suggestions?limit=5")), &sugg); err != nil || len(sugg.Suggestions) < 2 {
		t.Fatalf("suggestions for user 1: %v %+v", err, sugg)
	}
	b := user{sugg.Suggestions[0].ID, devToken(t, sugg.Suggestions[0].ID)}
	c := user{sugg.Suggestions[1].ID, devToken(t, sugg.Suggestions[1].ID)}

	// Another user's swipe on a leaves a's deck stored.
	if res, body := call(c, "POST", "/api/swipes", fmt.Sprintf(`{"target_id":%d,"direction":"pass"}`, a.id)); res.StatusCode/100 != 2 {
		t.Fatalf("c swipes a: %d %s", res.StatusCode, body)
	}
	want(a, "/api/matches/suggestions?limit=5", true)

	// a and b match: a's own swipe purges a's deck.
	if res, body := call(a, "POST", "/api/swipes", fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, b.id)); res.StatusCode != 201 {
		t.Fatalf("a likes b: %d %s", res.StatusCode, body)
	}
	want(a, "/api/matches/suggestions?limit=5", false)
	get(a, "/api/matches")
	if res, body := call(b, "POST", "/api/swipes", fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, a.id)); res.StatusCode != 201 || !strings.Contains(body, `"conversation_id"`) {
		t.Fatalf("b likes a: %d %s, want a match", res.StatusCode, body)
	}
	// The match purged a's stored match list.
	if body := want(a, "/api/matches", false); !strings.Contains(body, fmt.Sprintf(`"peer_id":%d`, b.id)) {
		t.Fatalf("a's matches after the match: %s", body)
	}
	var inbox struct {
		Conversations []struct {
			ID     int64 `json:"id"`
			PeerID int64 `json:"peer_id"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal([]byte(get(a, "/api/conversations")), &inbox); err != nil {
		t.Fatalf("a's inbox: %v", err)
	}
	var conv int64
	for _, c := range inbox.Conversations {
		if c.PeerID == b.id {
			conv = c.ID
		}
	}
	if conv == 0 {
		t.Fatalf("a's inbox lacks the conversation with %d: %+v", b.id, inbox)
	}
	msgs := fmt.Sprintf("/api/conversations/%d/messages?limit=30", conv)
	get(a, msgs)
	// b's own entries, never a's.
	if body := get(b, "/api/conversations"); !strings.Contains(body, fmt.Sprintf(`"peer_id":%d`, a.id)) {
		t.Fatalf("b's inbox is not b's: %s", body)
	}
	get(b, msgs)
	get(b, "/api/matches")
	// c is no member: the edge never serves the stored list to c.
	if res, _ := call(c, "GET", msgs, ""); res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusForbidden {
		t.Fatalf("c reads a and b's messages: %d %q", res.StatusCode, res.Header.Get("Cache-Status"))
	}

	// b sends a message: both inboxes and both message lists are purged,
	// the match lists are not; the edge fetches the sender's inbox again
	// (Spark-Refresh), so b's next read of it is a hit.
	res, body := call(b, "POST", fmt.Sprintf("/api/conversations/%d/messages", conv), `{"body":"hello","client_msg_id":"e2e-private-1"}`)
	if res.StatusCode != 201 {
		t.Fatalf("b sends: %d %s", res.StatusCode, body)
	}
	var sent struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &sent); err != nil {
		t.Fatal(err)
	}
	for _, u := range []user{a, b} {
		if body := want(u, msgs, false); !strings.Contains(body, fmt.Sprintf(`"id":%d`, sent.ID)) {
			t.Fatalf("user %d's messages lack message %d: %s", u.id, sent.ID, body)
		}
		inbox := ""
		if u == b {
			inbox = refreshed(u, "/api/conversations")
		} else {
			inbox = want(u, "/api/conversations", false)
		}
		if !strings.Contains(inbox, `"hello"`) {
			t.Fatalf("user %d's inbox lacks the last message: %s", u.id, inbox)
		}
		want(u, "/api/matches", true)
		want(u, "/api/conversations", true)
	}

	// a reads it: a's inbox (its unread count) is purged and fetched again
	// for a, b's is left as it was.
	if res, body := call(a, "POST", fmt.Sprintf("/api/conversations/%d/read", conv), fmt.Sprintf(`{"message_id":%d}`, sent.ID)); res.StatusCode != 204 {
		t.Fatalf("a marks read: %d %s", res.StatusCode, body)
	}
	if body := refreshed(a, "/api/conversations"); !strings.Contains(body, `"unread_count":0`) {
		t.Fatalf("a's inbox after reading: %s", body)
	}
	if body := want(b, "/api/conversations", true); !strings.Contains(body, fmt.Sprintf(`"peer_id":%d`, a.id)) {
		t.Fatalf("b's inbox after a read: %s", body)
	}

	// Own profiles: stored per user; a's update (by number) purges a's
	// entry and leaves b's; nobody updates another's profile.
	first := get(a, "/api/users/me/profile")
	if body := get(b, "/api/users/me/profile"); strings.Contains(body, fmt.Sprintf(`"id":%d,`, a.id)) {
		t.Fatalf("b got a's profile as its own: %s", body)
	}
	update := `{"name":"Renamed","age":30,"gender":"woman","bio":"new"}`
	if res, body := call(b, "PUT", fmt.Sprintf("/api/users/%d/profile", a.id), update); res.StatusCode != http.StatusForbidden {
		t.Fatalf("b updates a's profile: %d %s, want 403", res.StatusCode, body)
	}
	if res, body := call(a, "PUT", fmt.Sprintf("/api/users/%d/profile", a.id), update); res.StatusCode != 200 {
		t.Fatalf("a updates the profile: %d %s", res.StatusCode, body)
	}
	if body := refreshed(a, "/api/users/me/profile"); body == first || !strings.Contains(body, "Renamed") {
		t.Fatalf("a's own profile after the update: %s", body)
	}
	if body := want(b, "/api/users/me/profile", true); strings.Contains(body, "Renamed") {
		t.Fatalf("b got a's profile as its own: %s", body)
	}
}

// TestPrivateEntriesOutliveTokenRenewal: the edge keys per-user entries by
// the user spark_auth verified, so a user's renewed token finds the entries
// the old one filled, while another user's token never does.
func TestPrivateEntriesOutliveTokenRenewal(t *testing.T) {
	_, base := startStack(t, 50)
	get := func(tok, path string) (*http.Response, string) {
		t.Helper()
		return httpDo(t, http.DefaultClient, "GET", base+path, "", "Authorization", "Bearer "+tok)
	}
	old := devToken(t, 3)
	renewed, err := origin.IssueToken(origin.DevJWTSecret, 3, 2*time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if renewed == old {
		t.Fatal("the renewed token is the old one")
	}
	for _, path := range []string{"/api/users/me/profile", "/api/matches", "/api/conversations", "/api/matches/suggestions?limit=5"} {
		res, body := get(old, path)
		if res.StatusCode != 200 || strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit") {
			t.Fatalf("GET %s: %d %q, want a 200 miss", path, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		res, again := get(renewed, path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit") || again != body {
			t.Fatalf("GET %s with the renewed token: %d %q, want the old token's entry", path, res.StatusCode, res.Header.Get("Cache-Status"))
		}
		res, other := get(devToken(t, 4), path)
		if res.StatusCode != 200 || strings.HasPrefix(res.Header.Get("Cache-Status"), "spark; hit") || other == body {
			t.Fatalf("GET %s as user 4: %d %q, body equal to user 3's: %v", path, res.StatusCode, res.Header.Get("Cache-Status"), other == body)
		}
	}
}
