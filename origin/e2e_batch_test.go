package origin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin"
)

// TestBatchEndToEnd sends POST /api/batch to a real edge (the repository's
// Caddyfile) in front of the real origin: cached sub-requests are hits, a
// swipe inside the batch purges the suggestions so the GET after it is
// forwarded without the swiped user, another user's batch never gets the
// first user's private suggestions, and a batch without a token gets the
// origin's 401 per sub-request.
func TestBatchEndToEnd(t *testing.T) {
	_, base := startStack(t, 300)
	tok1, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := origin.IssueToken(origin.DevJWTSecret, 2, time.Hour, time.Now())
	type subRes struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	}
	batch := func(tok, body string) []subRes {
		t.Helper()
		hdr := []string{"Content-Type", "application/json"}
		if tok != "" {
			hdr = append(hdr, "Authorization", "Bearer "+tok)
		}
		res, b := httpDo(t, http.DefaultClient, "POST", base+"/api/batch", body, hdr...)
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "private, no-store" {
			t.Fatalf("batch: %d %q %s", res.StatusCode, res.Header.Get("Cache-Control"), b)
		}
		var out struct {
			Responses []subRes `json:"responses"`
		}
		if err := json.Unmarshal([]byte(b), &out); err != nil {
			t.Fatalf("batch body %s: %v", b, err)
		}
		return out.Responses
	}
	hit := func(r subRes) bool {
		for _, p := range strings.Split(r.Headers["Cache-Status"], ";") {
			if strings.TrimSpace(p) == "hit" {
				return true
			}
		}
		return false
	}
	ids := func(r subRes) []int64 {
		var out struct {
			Suggestions []struct {
				ID int64 `json:"id"`
			} `json:"suggestions"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("suggestions %s: %v", r.Body, err)
		}
		var v []int64
		for _, s := range out.Suggestions {
			v = append(v, s.ID)
		}
		return v
	}

	const sugg = "/api/matches/suggestions?limit=5"
	// Warm user 1's suggestions and a profile with plain requests.
	res, body := httpDo(t, http.DefaultClient, "GET", base+sugg, "", "Authorization", "Bearer "+tok1)
	if res.StatusCode != 200 {
		t.Fatalf("suggestions: %d %s", res.StatusCode, body)
	}
	var first struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
	}
	if err := json.Unmarshal([]byte(body), &first); err != nil || len(first.Suggestions) == 0 {
		t.Fatalf("suggestions %s: %v", body, err)
	}
	target := first.Suggestions[0].ID
	prof := fmt.Sprintf("/api/users/%d/profile", target)
	if res, _ := httpDo(t, http.DefaultClient, "GET", base+prof, "", "Authorization", "Bearer "+tok1); res.StatusCode != 200 {
		t.Fatalf("profile: %d", res.StatusCode)
	}

	// Cache-Status is not kept by default: the batch asks for it.
	out := batch(tok1, fmt.Sprintf(`{"response_headers":["Cache-Status"],"requests":[
		{"id":"deck","path":%q},
		{"id":"profile","path":%q},
		{"id":"swipe","method":"POST","path":"/api/swipes","body":{"target_id":%d,"direction":"like"}},
		{"id":"deck2","path":%q}]}`, sugg, prof, target, sugg))
	if out[0].Status != 200 || !hit(out[0]) || out[1].Status != 200 || !hit(out[1]) {
		t.Errorf("cached sub-requests: %d %q / %d %q", out[0].Status, out[0].Headers["Cache-Status"], out[1].Status, out[1].Headers["Cache-Status"])
	}
	if out[2].Status != 201 {
		t.Fatalf("swipe in the batch: %d %s", out[2].Status, out[2].Body)
	}
	if out[3].Status != 200 || hit(out[3]) || slices.Contains(ids(out[3]), target) {
		t.Errorf("suggestions after the swipe: %q, %v still has %d?", out[3].Headers["Cache-Status"], ids(out[3]), target)
	}
	if out[1].Headers["Etag"] == "" {
		t.Errorf("profile sub-response without its ETag: %v", out[1].Headers)
	}

	// User 2's batch: forwarded (never user 1's entry), user 2's own deck.
	out = batch(tok2, fmt.Sprintf(`{"response_headers":["Cache-Status"],"requests":[{"id":"deck","path":%q}]}`, sugg))
	if out[0].Status != 200 || hit(out[0]) || slices.Contains(ids(out[0]), 2) {
		t.Errorf("user 2's deck: %q %v", out[0].Headers["Cache-Status"], ids(out[0]))
	}
	out = batch(tok2, fmt.Sprintf(`{"response_headers":["Cache-Status"],"requests":[{"id":"deck","path":%q}]}`, sugg))
	if !hit(out[0]) {
		t.Errorf("user 2's second deck not a hit: %q", out[0].Headers["Cache-Status"])
	}

	// No token: the origin's 401 document for each API sub-request.
	out = batch("", fmt.Sprintf(`{"requests":[{"id":"deck","path":%q},{"id":"profile","path":%q}]}`, sugg, prof))
	for _, r := range out {
		if r.Status != 401 || r.Headers["Content-Type"] != "application/problem+json" {
			t.Errorf("%s without a token: %d %v", r.ID, r.Status, r.Headers)
		}
	}
}
