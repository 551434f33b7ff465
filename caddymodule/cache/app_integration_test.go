package cache

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/caddymodule/internal/tagpurge"
)

// TestIntegrationPurgeApp: the config's spark_cache app, as another plugin
// finds it (tagpurge.Load), purges by tag what the config's handler
// stored, and nothing else; a bad tag is refused and purges nothing.
func TestIntegrationPurgeApp(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Cache-Tags", "item:"+r.URL.Path[len("/items/"):])
		_, _ = io.WriteString(w, "item "+r.URL.RequestURI())
	})
	for _, p := range []string{"/items/1", "/items/2"} {
		e.get(p)
		if !e.get(p).isHit() {
			t.Fatalf("%s not stored", p)
		}
	}
	p, err := tagpurge.Load(caddy.ActiveContext())
	if err != nil || p == nil {
		t.Fatalf("no purger in the running config: %v", err)
	}
	if err := p.PurgeTags(context.Background(), "item:1", "bad tag"); err == nil {
		t.Fatal("a tag with a space was accepted")
	}
	if !e.get("/items/1").isHit() {
		t.Fatal("a refused purge removed an entry")
	}
	if err := p.PurgeTags(context.Background(), "item:1"); err != nil {
		t.Fatal(err)
	}
	if e.get("/items/1").isHit() {
		t.Fatal("/items/1 still a hit after its tag was purged through the app")
	}
	if !e.get("/items/2").isHit() {
		t.Fatal("/items/2 was purged too")
	}
}
