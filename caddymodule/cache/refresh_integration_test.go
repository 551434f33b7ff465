package cache

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntegrationSparkRefresh: a write's Spark-Refresh makes the edge,
// after the write's purge, fetch the writer's own entry again with the
// writer's credential (no body, no Content-Type), so the writer's next read
// is a hit with the new state; another user's entry is neither refreshed
// nor served to the writer; absolute URLs are ignored; a write without a
// credential refreshes nothing; the field never reaches the client.
func TestIntegrationSparkRefresh(t *testing.T) {
	e := startEdge(t, `spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
		private
	}`)
	var version atomic.Int64
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("Authorization")
		switch {
		case r.URL.Path == "/inbox" && r.Method == http.MethodGet:
			if r.Header.Get("Content-Type") != "" || r.ContentLength > 0 {
				http.Error(w, "a GET with a body", http.StatusBadRequest)
				return
			}
			w.Header().Set("Cache-Control", "private, max-age=100")
			w.Header().Set("Vary", "Authorization")
			w.Header().Set("Cache-Tags", "inbox:"+strings.Fields(user + " none")[1])
			fmt.Fprintf(w, "inbox of %s v%d", user, version.Load())
		case r.URL.Path == "/send":
			_, _ = io.Copy(io.Discard, r.Body)
			version.Add(1)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Spark-Purge", "inbox:"+strings.Fields(user + " none")[1])
			w.Header().Set("Spark-Refresh", "/inbox, http://elsewhere.example/inbox, //elsewhere.example/x")
			w.WriteHeader(http.StatusCreated)
		default:
			http.NotFound(w, r)
		}
	})
	alice, bob := []string{"Authorization", "Bearer alice"}, []string{"Authorization", "Bearer bob"}
	e.get("/inbox", alice...)
	e.get("/inbox", bob...)
	if !e.get("/inbox", alice...).isHit() || !e.get("/inbox", bob...).isHit() {
		t.Fatal("the inboxes were not stored")
	}
	r := e.doBody("POST", "/send", []byte(`{"body":"hi"}`), append([]string{"Content-Type", "application/json"}, alice...)...)
	if r.status != http.StatusCreated || r.header.Get("Spark-Refresh") != "" || r.header.Get("Spark-Purge") != "" {
		t.Fatalf("send: %d, Spark-Refresh %q, Spark-Purge %q reached the client", r.status, r.header.Get("Spark-Refresh"), r.header.Get("Spark-Purge"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.origin.hits("GET", "/inbox") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh after the write: %d origin GETs of /inbox", e.origin.hits("GET", "/inbox"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.origin.lastRequest("GET", "/inbox").Header.Get("Authorization"); got != "Bearer alice" {
		t.Fatalf("the refresh carried Authorization %q, want the writer's", got)
	}
	// Wait for the store after the response.
	for !e.get("/inbox", append([]string{"Cache-Control", "only-if-cached"}, alice...)...).isHit() {
		if time.Now().After(deadline) {
			t.Fatal("the refreshed inbox was never stored")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := e.get("/inbox", alice...); !r.isHit() || r.body != "inbox of Bearer alice v1" {
		t.Fatalf("alice after her write: hit=%v %q, want the refreshed v1", r.isHit(), r.body)
	}
	if r := e.get("/inbox", bob...); !r.isHit() || r.body != "inbox of Bearer bob v0" {
		t.Fatalf("bob's entry: hit=%v %q, want his own untouched v0", r.isHit(), r.body)
	}
	// A write without a credential refreshes nothing.
	before := e.origin.hits("GET", "/inbox")
	e.doBody("POST", "/send", []byte(`{}`))
	time.Sleep(300 * time.Millisecond)
	if got := e.origin.hits("GET", "/inbox"); got != before {
		t.Fatalf("a write without a credential made %d refreshes", got-before)
	}
}
