package origin_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/spark-edge/spark/origin/store/memory"
)

// TestListPayloadShare measures the list views against the full payloads
// a client would fetch without them, on a deck of 20 cards whose users have
// 360-character bios: the card view of the deck (fields=
// id,name,age,distance_km,photos) must be at most 40% of the cards' full
// profiles; the default list (every field but photos, bios cut at
// origin.ListBioRunes) is printed beside it.
func TestListPayloadShare(t *testing.T) {
	st := memory.New()
	a := newAPI(t, st)
	me := mkUser(t, st, "viewer", 30, "woman", 48.85, 2.35, nil)
	for i := range 20 {
		mkUser(t, st, fmt.Sprintf("cand%02d", i), 30, "man", 48.85+float64(i)*0.01, 2.35, nil)
	}
	tok := token(t, me)
	list := func(query string) (ids []int64, size int) {
		t.Helper()
		r := a.do("GET", "/api/matches/suggestions?limit=20"+query, tok, "")
		expect(t, r, 200, "suggestions"+query)
		var out struct {
			Suggestions []struct {
				ID int64 `json:"id"`
			} `json:"suggestions"`
		}
		r.json(t, &out)
		for _, s := range out.Suggestions {
			ids = append(ids, s.ID)
		}
		return ids, len(r.body)
	}
	ids, defaultSize := list("")
	if len(ids) != 20 {
		t.Fatalf("deck of %d cards, want 20", len(ids))
	}
	_, cardSize := list("&fields=id,name,age,distance_km,photos")
	full := 0
	for _, id := range ids {
		r := a.do("GET", fmt.Sprintf("/api/users/%d/profile", id), tok, "")
		expect(t, r, 200, "profile")
		if !json.Valid([]byte(r.body)) {
			t.Fatalf("profile %d: %s", id, r.body)
		}
		full += len(r.body)
	}
	card, def := float64(cardSize)/float64(full), float64(defaultSize)/float64(full)
	t.Logf("list payloads of a 20-card deck: card view %d B, default list %d B, full profiles %d B (reference): card view %.0f%%, default list %.0f%% of full",
		cardSize, defaultSize, full, 100*card, 100*def)
	if card > 0.40 {
		t.Errorf("card view is %.0f%% of the full profiles, want ≤ 40%%", 100*card)
	}
	if def >= 1 {
		t.Errorf("default list (%d B) not smaller than the full profiles (%d B)", defaultSize, full)
	}
}
