package origin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testphotos"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// startDeckStack starts the origin on 300 demo users and the spark binary
// on the repository's Caddyfile in front of it, and returns the origin's
// address, the edge's base URL and its admin address.
func startDeckStack(t *testing.T) (originAddr, base, admin string) {
	t.Helper()
	bin := sparkBinary(t)
	originAddr, _ = startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 300, DemoSeed: 1, PhotoDir: t.TempDir()})
	ports := freePorts(t, 2)
	admin = "127.0.0.1:" + ports[1]
	base = startEdgeProcess(t, bin, filepath.Join(moduleRoot(t), "Caddyfile"), ports[0], t.TempDir(),
		"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+originAddr, "SPARK_ADMIN="+admin,
		"SPARK_JWT_SECRET="+origin.DevJWTSecret)
	return originAddr, base, admin
}

// TestDeckEarlyHintsThroughEdge asks the repository's edge for a user's
// suggestions, whose first cards have photos: the 200 is preceded by a
// 103 Early Hints carrying one Link per photo in the variant of the
// client's network class (ECT 3g → 400 px q75, WebP from the image types
// of its Accept; Save-Data → 200 px q60), on the miss and on the hit,
// without the origin's Spark-Deck-Photos; and the announced variants are
// then answered from the edge's cache (only-if-cached, so checking never
// fills it).
func TestDeckEarlyHintsThroughEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the edge")
	}
	originAddr, base, _ := startDeckStack(t)
	token := func(id int64) string { return "Bearer " + devToken(t, id) }

	// User 1's deck, asked of the origin itself; its first three cards get
	// a photo each (uploaded at the origin: the edge has stored nothing).
	res, body := httpDo(t, http.DefaultClient, "GET", "http://"+originAddr+"/api/matches/suggestions?limit=3", "",
		"Authorization", token(1))
	var deck struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
	}
	if err := json.Unmarshal([]byte(body), &deck); err != nil || res.StatusCode != 200 || len(deck.Suggestions) != 3 {
		t.Fatalf("suggestions at the origin: %d %s (%v)", res.StatusCode, body, err)
	}
	jpeg := testphotos.Read(t, "images", "portrait-hopper-512x600.jpg")
	var photos []string
	for _, s := range deck.Suggestions {
		res, b := httpDo(t, http.DefaultClient, "POST", "http://"+originAddr+"/api/users/me/photos", string(jpeg),
			"Authorization", token(s.ID), "Content-Type", "image/jpeg")
		var up struct{ URL string }
		if err := json.Unmarshal([]byte(b), &up); err != nil || res.StatusCode != 201 {
			t.Fatalf("upload for %d: %d %s", s.ID, res.StatusCode, b)
		}
		photos = append(photos, up.URL)
	}

	// hinted GETs the deck through the edge and returns the Link fields of
	// every 1xx before the final response, the final response and its body.
	hinted := func(hdr ...string) ([][]string, *http.Response, string) {
		t.Helper()
		var mu sync.Mutex
		var links [][]string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			if code != http.StatusEarlyHints {
				return fmt.Errorf("interim %d", code)
			}
			if len(h) != 1 {
				t.Errorf("103 carries more than Link: %v", h)
			}
			links = append(links, h.Values("Link"))
			return nil
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/matches/suggestions?limit=3", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", token(1))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return links, res, string(b)
	}
	want := func(w, q int, mime string) []string {
		var out []string
		for _, p := range photos {
			out = append(out, fmt.Sprintf(`<%s?w=%d&q=%d>; rel=preload; as=image; type=%q`, p, w, q, mime))
		}
		return out
	}
	threeG := []string{"ECT", "3g", "Accept", "application/json, image/webp"}
	for i, wantStatus := range []string{"miss", "hit"} {
		links, res, body := hinted(threeG...)
		if res.StatusCode != 200 || !strings.Contains(body, `"suggestions"`) {
			t.Fatalf("deck %d: %d %s", i, res.StatusCode, body)
		}
		if got := contract.IsCacheHit(res.Header.Get(contract.CacheStatus)); got != (wantStatus == "hit") {
			t.Errorf("deck %d: Cache-Status %q, want a %s", i, res.Header.Get(contract.CacheStatus), wantStatus)
		}
		if len(links) != 1 || !slices.Equal(links[0], want(400, 75, "image/webp")) {
			t.Fatalf("deck %d (%s): Early Hints %q, want one 103 with %q", i, wantStatus, links, want(400, 75, "image/webp"))
		}
		if v := res.Header.Values(contract.DeckPhotos); len(v) > 0 {
			t.Errorf("deck %d: the client got %s: %q", i, contract.DeckPhotos, v)
		}
		if res.Header.Get("Link") != "" {
			t.Errorf("deck %d: the final response carries Link %q", i, res.Header.Get("Link"))
		}
	}
	// A Save-Data client is told the slow class's variant, and as JPEG
	// when its Accept names no image type.
	links, _, _ := hinted("Save-Data", "on")
	if len(links) != 1 || !slices.Equal(links[0], want(200, 60, "image/jpeg")) {
		t.Errorf("Save-Data deck: Early Hints %q, want %q", links, want(200, 60, "image/jpeg"))
	}

	// The announced 3G variants become hits of the edge's cache without
	// the client fetching them.
	for _, p := range photos {
		url := fmt.Sprintf("%s%s?w=400&q=75", base, p)
		testutil.Eventually(t, 60*time.Second, "the warmed variant of "+p, func() bool {
			res, _ := httpDo(t, http.DefaultClient, "GET", url, "", "Accept", "image/webp", "Cache-Control", "only-if-cached")
			return res.StatusCode == 200
		})
		res, _ := httpDo(t, http.DefaultClient, "GET", url, "", "Accept", "image/webp")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/webp" || !contract.IsCacheHit(res.Header.Get(contract.CacheStatus)) {
			t.Errorf("%s after the deck: %d %s %q", p, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get(contract.CacheStatus))
		}
	}
}

// TestDeckCardProfilesWarmedThroughEdge asks the repository's edge
// (spark_deck_hints with profiles 40 and next_page) for a user's deck: the full profiles
// of its cards are then hits of the edge's cache for that viewer before
// the viewer opens any (only-if-cached, so checking never fills them),
// without the origin's Spark-Deck-Cards reaching the client; a card
// that blocked another user is, once warmed, still never served to that
// user; a deck answered from the cache warms no profile again; and the
// warms are counted in spark_deck_viewer_warms_total.
func TestDeckCardProfilesWarmedThroughEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the edge")
	}
	originAddr, base, admin := startDeckStack(t)
	token := func(id int64) string { return "Bearer " + devToken(t, id) }
	const viewer, other = 1, 2
	cardsOf := func(body string) []int64 {
		t.Helper()
		var deck struct {
			Suggestions []struct {
				ID int64 `json:"id"`
			} `json:"suggestions"`
		}
		if err := json.Unmarshal([]byte(body), &deck); err != nil {
			t.Fatalf("deck %s: %v", body, err)
		}
		var ids []int64
		for _, s := range deck.Suggestions {
			ids = append(ids, s.ID)
		}
		return ids
	}

	// The viewer's deck, asked of the origin: its first card blocks the
	// other user (so its profile, public, denies them).
	res, body := httpDo(t, http.DefaultClient, "GET", "http://"+originAddr+"/api/matches/suggestions?limit=6", "",
		"Authorization", token(viewer))
	cards := cardsOf(body)
	if res.StatusCode != 200 || len(cards) != 6 {
		t.Fatalf("deck at the origin: %d %s", res.StatusCode, body)
	}
	if got := res.Header.Get(contract.DeckCards); got != strings.Trim(fmt.Sprint(cards), "[]") {
		t.Errorf("origin %s %q, want the cards %v", contract.DeckCards, got, cards)
	}
	blocker := cards[0]
	if res, b := httpDo(t, http.DefaultClient, "POST", fmt.Sprintf("http://%s/api/users/%d/block", originAddr, other), "",
		"Authorization", token(blocker)); res.StatusCode != 204 {
		t.Fatalf("block: %d %s", res.StatusCode, b)
	}

	res, body = httpDo(t, http.DefaultClient, "GET", base+"/api/matches/suggestions?limit=6", "", "Authorization", token(viewer))
	if res.StatusCode != 200 || !slices.Equal(cardsOf(body), cards) {
		t.Fatalf("deck through the edge: %d %s, want the cards %v", res.StatusCode, body, cards)
	}
	if v := res.Header.Values(contract.DeckCards); len(v) > 0 {
		t.Errorf("the client got %s: %q", contract.DeckCards, v)
	}
	for _, id := range cards {
		url := fmt.Sprintf("%s/api/users/%d/profile", base, id)
		testutil.Eventually(t, 60*time.Second, fmt.Sprintf("card %d's profile warmed", id), func() bool {
			res, _ := httpDo(t, http.DefaultClient, "GET", url, "", "Authorization", token(viewer), "Cache-Control", "only-if-cached")
			return res.StatusCode == 200
		})
		res, b := httpDo(t, http.DefaultClient, "GET", url, "", "Authorization", token(viewer))
		if res.StatusCode != 200 || !contract.IsCacheHit(res.Header.Get(contract.CacheStatus)) ||
			!strings.Contains(b, fmt.Sprintf(`"id":%d`, id)) {
			t.Errorf("card %d opened: %d %q %s", id, res.StatusCode, res.Header.Get(contract.CacheStatus), b)
		}
	}
	// The warmed entry is the origin's shared answer with its deny list:
	// the user the blocker blocked gets what the origin would say, 404.
	if res, b := httpDo(t, http.DefaultClient, "GET", fmt.Sprintf("%s/api/users/%d/profile", base, blocker), "",
		"Authorization", token(other)); res.StatusCode != 404 {
		t.Errorf("blocked user %d opened %d's warmed profile: %d %s", other, blocker, res.StatusCode, b)
	}
	// No credential, no profile: the warmed entries sit behind spark_auth.
	if res, _ := httpDo(t, http.DefaultClient, "GET", fmt.Sprintf("%s/api/users/%d/profile", base, cards[1]), ""); res.StatusCode != 401 {
		t.Errorf("card profile without a token: %d, want 401", res.StatusCode)
	}

	warms := func() map[string]float64 {
		t.Helper()
		res, b := httpDo(t, http.DefaultClient, "GET", "http://"+admin+"/metrics", "")
		if res.StatusCode != 200 {
			t.Fatalf("edge metrics: %d", res.StatusCode)
		}
		out := map[string]float64{}
		for _, line := range strings.Split(b, "\n") {
			var result string
			var n float64
			if _, err := fmt.Sscanf(strings.Replace(line, `"} `, " ", 1), `spark_deck_viewer_warms_total{kind="profile",result="%s %g`, &result, &n); err == nil {
				out[result] = n
			}
		}
		return out
	}
	var before map[string]float64
	testutil.Eventually(t, 10*time.Second, "every profile warm counted", func() bool {
		before = warms()
		return before["stored"] >= float64(len(cards)) && before["stored"]+before["hit"] == before["queued"]
	})
	if before["queued"] < float64(len(cards)) {
		t.Errorf("profile warms %v, want at least %d queued and stored", before, len(cards))
	}
	// The same deck again is a hit: its cards were warmed at its fill (its
	// next page is, and its profiles were warmed with it).
	res, _ = httpDo(t, http.DefaultClient, "GET", base+"/api/matches/suggestions?limit=6", "", "Authorization", token(viewer))
	if !contract.IsCacheHit(res.Header.Get(contract.CacheStatus)) {
		t.Fatalf("deck again: Cache-Status %q, want a hit", res.Header.Get(contract.CacheStatus))
	}
	testutil.Eventually(t, 10*time.Second, "the warms settled", func() bool {
		after := warms()
		return after["queued"] == after["stored"]+after["hit"]
	})
	if after := warms(); after["stored"] != before["stored"] {
		t.Errorf("a deck hit warmed profiles again: %v after %v", after, before)
	}
}

// TestDeckNextPageThroughEdge pages a user's deck through the repository's
// edge (spark_deck_hints with next_page): serving a page warms the page
// after it as the viewer, so the refill is a hit; the viewer's swipes on
// the page before leave it stored (a swipe purges only the pages holding
// the swiped card), and a swipe on one of its own cards purges it, so it
// never suggests a swiped user.
func TestDeckNextPageThroughEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the edge")
	}
	_, base, _ := startDeckStack(t)
	const viewer = 3
	auth := "Bearer " + devToken(t, viewer)
	type page struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
		Next string `json:"next"`
	}
	get := func(url string, hdr ...string) (*http.Response, page) {
		t.Helper()
		res, body := httpDo(t, http.DefaultClient, "GET", base+url, "", append([]string{"Authorization", auth}, hdr...)...)
		var p page
		if res.StatusCode == 200 {
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("%s: %s: %v", url, body, err)
			}
		}
		return res, p
	}
	ids := func(p page) []int64 {
		var out []int64
		for _, s := range p.Suggestions {
			out = append(out, s.ID)
		}
		return out
	}
	swipe := func(target int64) {
		t.Helper()
		res, b := httpDo(t, http.DefaultClient, "POST", base+"/api/swipes", fmt.Sprintf(`{"target_id":%d,"direction":"pass"}`, target),
			"Authorization", auth, "Content-Type", "application/json")
		if res.StatusCode != 200 && res.StatusCode != 201 {
			t.Fatalf("swipe %d: %d %s", target, res.StatusCode, b)
		}
	}

	res, first := get("/api/matches/suggestions?limit=5")
	if res.StatusCode != 200 || len(first.Suggestions) != 5 || first.Next == "" {
		t.Fatalf("first page: %d %+v", res.StatusCode, first)
	}
	if v := res.Header.Values(contract.DeckNext); len(v) > 0 {
		t.Errorf("the client got %s: %q", contract.DeckNext, v)
	}
	nextURL := "/api/matches/suggestions?limit=5&after=" + first.Next
	testutil.Eventually(t, 60*time.Second, "the next page warmed", func() bool {
		res, _ := get(nextURL, "Cache-Control", "only-if-cached")
		return res.StatusCode == 200
	})
	// The viewer swipes through the first page: the next page stays.
	for _, id := range ids(first) {
		swipe(id)
	}
	res, second := get(nextURL)
	if res.StatusCode != 200 || !contract.IsCacheHit(res.Header.Get(contract.CacheStatus)) || len(second.Suggestions) != 5 {
		t.Fatalf("next page after swiping the first: %d %q %v", res.StatusCode, res.Header.Get(contract.CacheStatus), ids(second))
	}
	for _, id := range ids(second) {
		if slices.Contains(ids(first), id) {
			t.Errorf("card %d on both pages: %v, %v", id, ids(first), ids(second))
		}
	}
	// A swipe on one of its cards purges it: never suggested again.
	swiped := second.Suggestions[0].ID
	swipe(swiped)
	res, again := get(nextURL)
	if res.StatusCode != 200 || contract.IsCacheHit(res.Header.Get(contract.CacheStatus)) || slices.Contains(ids(again), swiped) {
		t.Errorf("next page after swiping %d: %d %q %v", swiped, res.StatusCode, res.Header.Get(contract.CacheStatus), ids(again))
	}
}
