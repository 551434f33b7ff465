package cache

import "testing"

// Purge keys are normalized like request keys: sorted query, the rule's
// ignored parameters dropped.
func TestIntegrationAdminPurgeKeyIgnoresQueryParams(t *testing.T) {
	e := startEdge(t, "")
	e.get("/j?b=1&a=2")
	if r := e.get("/j?a=2&b=1&utm_source=x"); r.header.Get("Cache-Status") == "" || r.status != 200 {
		t.Fatalf("second GET: %d %q", r.status, r.header.Get("Cache-Status"))
	}
	if n := e.purge(`{"keys":["/j?utm_source=a&b=1&a=2"]}`); n != 1 {
		t.Fatalf("purge by key with an ignored parameter removed %d, want 1", n)
	}
	if got := e.origin.hits("GET", "/j"); got != 1 {
		t.Fatalf("origin hits before refetch = %d, want 1", got)
	}
	e.get("/j?a=2&b=1")
	if got := e.origin.hits("GET", "/j"); got != 2 {
		t.Fatalf("origin hits after purge = %d, want 2", got)
	}
}
