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
	bin := sparkBinary(t)
	originAddr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 300, DemoSeed: 1, PhotoDir: t.TempDir()})
	ports := freePorts(t, 2)
	base := startEdgeProcess(t, bin, filepath.Join(moduleRoot(t), "Caddyfile"), ports[0], t.TempDir(),
		"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+originAddr, "SPARK_ADMIN=127.0.0.1:"+ports[1],
		"SPARK_JWT_SECRET="+origin.DevJWTSecret)
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
