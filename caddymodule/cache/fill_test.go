package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Users authenticated by cookie only, on a private response that varies on
// Authorization: each gets their own entry, never another's.
func TestPrivateCookieUsersNeverShare(t *testing.T) {
	c, _ := newUnitCache(t, Policy{}, []Rule{{Path: "/api/me*", Policy: Policy{Private: ptr(true)}}})
	var calls atomic.Int64
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Set("Vary", "Authorization")
		_, err := w.Write([]byte("profile of " + r.Header.Get("Cookie")))
		return err
	})
	get := func(cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "http://spark.test/api/me", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		return serve(t, c, r, origin)
	}
	for _, u := range []string{"sid=alice", "sid=bob", "sid=alice", "sid=bob"} {
		w := get(u)
		if want := "profile of " + u; w.Body.String() != want {
			t.Fatalf("%s got %q (Cache-Status %q)", u, w.Body.String(), w.Header().Get("Cache-Status"))
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("origin calls %d, want 2 (one per user, then hits)", calls.Load())
	}
	// Anonymous requests never get a private entry.
	if w := get(""); strings.Contains(w.Body.String(), "sid=") || strings.Contains(w.Header().Get("Cache-Status"), "hit") {
		t.Fatalf("anonymous got %q (%q)", w.Body.String(), w.Header().Get("Cache-Status"))
	}
}

// Vary: * is never served from the cache, and a 5xx is never stored.
func TestNeverStored(t *testing.T) {
	c, _ := newUnitCache(t, Policy{TTL: 0}, []Rule{{Path: "/*", Policy: Policy{}}})
	for _, tc := range []struct {
		name   string
		status int
		h      []string
	}{
		{"vary star", 200, []string{"Cache-Control", "max-age=60", "Vary", "*"}},
		{"server error", 503, []string{"Cache-Control", "max-age=60"}},
		{"no-store", 200, []string{"Cache-Control", "no-store, max-age=60"}},
		{"set-cookie", 200, []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "a=b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				calls.Add(1)
				for i := 0; i+1 < len(tc.h); i += 2 {
					w.Header().Add(tc.h[i], tc.h[i+1])
				}
				w.WriteHeader(tc.status)
				return nil
			})
			for i := 0; i < 2; i++ {
				r := httptest.NewRequest(http.MethodGet, "http://spark.test/"+strings.ReplaceAll(tc.name, " ", "-"), nil)
				w := serve(t, c, r, origin)
				if strings.Contains(w.Header().Get("Cache-Status"), "stored") || strings.Contains(w.Header().Get("Cache-Status"), "hit") {
					t.Fatalf("Cache-Status %q", w.Header().Get("Cache-Status"))
				}
			}
			if calls.Load() != 2 {
				t.Fatalf("origin calls %d, want 2", calls.Load())
			}
		})
	}
}

// A miss that looked up before a fill of its key ended, and joins after,
// is told to look again instead of leading a second fill; a miss that
// looked up after it leads. Ended fills are remembered for a bounded
// number of later fills.
func TestFlightsJoinAfterAFillEnded(t *testing.T) {
	var f flights
	seen := f.endedFills()
	c, leader, filled := f.joinAfter("k", seen)
	if !leader || filled {
		t.Fatalf("first miss: leader %v, filled %v", leader, filled)
	}
	if _, leader, filled := f.joinAfter("k", seen); leader || filled {
		t.Fatalf("miss during the fill: leader %v, filled %v; want a waiter", leader, filled)
	}
	f.leave("k", c)
	if _, leader, filled := f.joinAfter("k", seen); leader || !filled {
		t.Fatalf("miss looked up before the fill ended: leader %v, filled %v; want filled", leader, filled)
	}
	c2, leader, filled := f.joinAfter("k", f.endedFills())
	if !leader || filled {
		t.Fatalf("miss looked up after the fill ended: leader %v, filled %v; want leader", leader, filled)
	}
	f.leave("k", c2)
	seen = f.endedFills() - 1 // before k's last fill ended
	for i := range 2 * recentFills {
		o, _ := f.join(fmt.Sprintf("other-%d", i))
		f.leave(fmt.Sprintf("other-%d", i), o)
	}
	if len(f.recent)+len(f.older) > 2*recentFills {
		t.Fatalf("remembers %d ended fills, want at most %d", len(f.recent)+len(f.older), 2*recentFills)
	}
	if _, leader, filled := f.joinAfter("k", seen); !leader || filled {
		t.Fatalf("fill forgotten after %d others: leader %v, filled %v; want leader", 2*recentFills, leader, filled)
	}
}
