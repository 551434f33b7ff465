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
// profile paths to warmCards, a hit or another status does not; every
// 200 hands its next page to warmNext; the fields never reach the client.
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
			var next string
			w := &hintWriter{ResponseWriter: rec, announcer: a, req: req, cards: 3,
				warmCards: func(ps []string) { got = ps }, warmNext: func(u string) { next = u }}
			w.Header().Set(contract.DeckCards, "3 4 5 6")
			w.Header().Set(contract.DeckNext, "1500_6")
			if tc.cacheStatus != "" {
				w.Header().Set(contract.CacheStatus, tc.cacheStatus)
			}
			w.WriteHeader(tc.status)
			if !slices.Equal(got, tc.want) {
				t.Errorf("warmed %q, want %q", got, tc.want)
			}
			if wantNext := "/api/matches/suggestions?after=1500_6"; (next == wantNext) != (tc.status == 200) {
				t.Errorf("next page warmed %q", next)
			}
			for _, wr := range rec.written {
				if wr.header.Get(contract.DeckCards) != "" || wr.header.Get(contract.DeckNext) != "" {
					t.Errorf("status %d carried %v", wr.status, wr.header)
				}
			}
		})
	}
}

func TestNextPageURL(t *testing.T) {
	for _, tc := range []struct{ query, cursor, want string }{
		{"limit=40", "1500.25_42", "/api/matches/suggestions?limit=40&after=1500.25_42"},
		{"", "0_7", "/api/matches/suggestions?after=0_7"},
		{"after=1_2&limit=40&after=3_4&fields=id", "5_6", "/api/matches/suggestions?limit=40&fields=id&after=5_6"},
		{"afterx=1&limit=40", "5_6", "/api/matches/suggestions?afterx=1&limit=40&after=5_6"},
		{"limit=40", "", ""},
		{"limit=40", "1_2&limit=100", ""},
		{"limit=40", "1_2/../x", ""},
		{"limit=40", strings.Repeat("1", maxCursor+1), ""},
	} {
		r, _ := http.NewRequest("GET", "http://edge/api/matches/suggestions?"+tc.query, nil)
		if got := NextPageURL(r, tc.cursor); got != tc.want {
			t.Errorf("NextPageURL(?%s, %q) = %q, want %q", tc.query, tc.cursor, got, tc.want)
		}
	}
	deck, _ := http.NewRequest("GET", "http://edge/api/matches/suggestions", nil)
	deck.Header.Set("Authorization", "Bearer viewer")
	if p := pageRequest(deck, "/api/matches/suggestions?after=1_2"); !isPageWarm(p) || isPageWarm(deck) ||
		p.Header.Get("Authorization") != "Bearer viewer" || p.URL.RawQuery != "after=1_2" {
		t.Errorf("page request %v %q marked %v", p.Header, p.URL.RawQuery, isPageWarm(p))
	}
}
