package deck

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

func TestCardProfilePaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		limit  int
		want   []string
	}{
		{"in order", []string{"42 7"}, 5, []string{"/api/users/42/profile", "/api/users/7/profile"}},
		{"several fields, commas", []string{"42,", "7"}, 5, []string{"/api/users/42/profile", "/api/users/7/profile"}},
		{"limit", []string{"1 2 3"}, 2, []string{"/api/users/1/profile", "/api/users/2/profile"}},
		{"none", []string{"1 2"}, 0, nil},
		{"once each", []string{"1 1 2"}, 5, []string{"/api/users/1/profile", "/api/users/2/profile"}},
		{"ids only", []string{"-1 0 01 +3 1e3 x /api/users/1/profile ../1 9223372036854775808 " +
			strings.Repeat("9", 20) + " 9223372036854775807"}, 10, []string{"/api/users/9223372036854775807/profile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CardProfilePaths(tc.values, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("CardProfilePaths(%q, %d) = %q, want %q", tc.values, tc.limit, got, tc.want)
			}
		})
	}
	var many []string
	for i := 1; i <= contract.MaxDeckCards+5; i++ {
		many = append(many, strconv.Itoa(i))
	}
	if got := CardProfilePaths(many, 1000); len(got) != contract.MaxDeckCards {
		t.Errorf("%d ids, limit 1000: %d paths, want at most %d", len(many), len(got), contract.MaxDeckCards)
	}
}

// TestProfileRequest: the warm carries the viewer's credential and
// Accept-Encoding and nothing else of the deck request.
func TestProfileRequest(t *testing.T) {
	deck, _ := http.NewRequest("GET", "http://edge.example/api/matches/suggestions?limit=40", nil)
	deck.RemoteAddr = "192.0.2.1:5000"
	deck.Header.Set("Authorization", "Bearer viewer")
	deck.Header.Set("Accept-Encoding", "zstd, gzip")
	deck.Header.Set("Cookie", "s=1")
	deck.Header.Set(contract.ReadAfter, "0/1")
	deck.Header.Set("Cache-Control", "no-cache")
	r := profileRequest(deck, "/api/users/7/profile")
	if r.Method != "GET" || r.Host != "edge.example" || r.URL.Path != "/api/users/7/profile" || r.URL.RawQuery != "" ||
		r.RemoteAddr != deck.RemoteAddr {
		t.Errorf("request %s %s %s %q from %s", r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.RemoteAddr)
	}
	if len(r.Header) != 2 || r.Header.Get("Authorization") != "Bearer viewer" || r.Header.Get("Accept-Encoding") != "zstd, gzip" {
		t.Errorf("header %v, want only the viewer's Authorization and Accept-Encoding", r.Header)
	}
}

// TestHintWriterCards: a 200 deck that was not a hit hands its cards'
// profile paths to warmCards, a hit or another status does not, and the
// field never reaches the client.
func TestHintWriterCards(t *testing.T) {
	a, err := NewAnnouncer(imageproxy.DefaultPlan(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		status      int
		cacheStatus string
		want        []string
	}{
		{"miss", 200, "spark; fwd=miss; stored", []string{"/api/users/3/profile", "/api/users/4/profile", "/api/users/5/profile"}},
		{"no cache", 200, "", []string{"/api/users/3/profile", "/api/users/4/profile", "/api/users/5/profile"}},
		{"hit", 200, "spark; hit; ttl=100", nil},
		{"not found", 404, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &interimRecorder{header: make(http.Header)}
			req, _ := http.NewRequest("GET", "/api/matches/suggestions", nil)
			var got []string
			w := &hintWriter{ResponseWriter: rec, announcer: a, req: req, cards: 3,
				warmCards: func(ps []string) { got = ps }}
			w.Header().Set(contract.DeckCards, "3 4 5 6")
			if tc.cacheStatus != "" {
				w.Header().Set(contract.CacheStatus, tc.cacheStatus)
			}
			w.WriteHeader(tc.status)
			if !slices.Equal(got, tc.want) {
				t.Errorf("warmed %q, want %q", got, tc.want)
			}
			for _, wr := range rec.written {
				if wr.header.Get(contract.DeckCards) != "" {
					t.Errorf("status %d carried %s", wr.status, contract.DeckCards)
				}
			}
		})
	}
}
