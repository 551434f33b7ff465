package deck

import (
	"net/http"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// TestWarmerBoundsAndDedupes holds the route's answers: a second warm of
// the same variant is deduplicated, warms past the queue are dropped, and
// the requests carry nothing of the client's but its host.
func TestWarmerBoundsAndDedupes(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan *http.Request, 8)
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		<-release
		if r.URL.Path == "/api/users/2/photos/b.jpg" {
			w.Header().Set(contract.CacheStatus, "Spark; hit")
		}
		w.WriteHeader(http.StatusOK)
	})
	wm := newWarmer(1, 2, time.Minute)
	client, _ := http.NewRequest("GET", "http://edge.example/api/matches/suggestions", nil)
	client.Header.Set("Authorization", "Bearer secret")
	client.Header.Set("Cookie", "s=1")
	v := imageproxy.Variant{Width: 400, Quality: 75, Format: imageproxy.FormatWebP}
	results := make(chan string, 4)
	done := func(r string) { results <- r }

	a := Preload{Path: "/api/users/1/photos/a.jpg", Variant: v}
	b := Preload{Path: "/api/users/2/photos/b.jpg", Variant: v}
	c := Preload{Path: "/api/users/3/photos/c.jpg", Variant: v}
	for _, tc := range []struct {
		p    Preload
		want string
	}{{a, warmQueued}, {a, warmDeduped}, {b, warmQueued}, {c, warmDropped}} {
		if got := wm.enqueue(route, photoKey(tc.p), warmRequest(client, tc.p), done); got != tc.want {
			t.Errorf("enqueue %s: %s, want %s", tc.p.Path, got, tc.want)
		}
	}
	r := <-seen
	if r.Host != "edge.example" || r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" ||
		r.Header.Get("Accept") != "image/webp" || r.URL.RawQuery != "w=400&q=75" {
		t.Errorf("warm request: host %q header %v query %q", r.Host, r.Header, r.URL.RawQuery)
	}
	close(release)
	got := map[string]bool{<-results: true, <-results: true}
	if !got[warmStored] || !got[warmHit] {
		t.Errorf("results %v, want stored and hit", got)
	}
	// Done warms left the in-flight set: a is queued again.
	if got := wm.enqueue(route, photoKey(a), warmRequest(client, a), done); got != warmQueued {
		t.Errorf("a again: %s", got)
	}
	<-seen
	<-results
}
