package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

// A handler whose config a reload retired accepts only what the new
// config's handler accepts too (a connection an old server took after the
// reload returned), and keeps its own verdict when no config runs (exit).
func TestRetiredHandlerDefersToLiveConfig(t *testing.T) {
	k := newTestKeys(t)
	old := &Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: testSecret}, {Value: k.oldSecret, KeyID: "old"}}, Audience: "spark-api"}}
	if err := provision(t, old); err != nil {
		t.Fatal(err)
	}
	tOld, tCur := signHS(t, k.oldSecret, "old", 14), signHS(t, testSecret, "", 16)
	status := func(h *Handler, tok string) int {
		t.Helper()
		r, _ := request(http.MethodGet, "/api/me", "Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, new(nextCounter)); err != nil {
			t.Fatal(err)
		}
		return w.Code
	}
	if got := status(old, tOld); got != http.StatusNoContent {
		t.Fatalf("old key before the reload: %d", got)
	}

	// The reload: the new config (old secret retired) is provisioned,
	// then the old one cleaned up.
	cur := &Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: testSecret}},
		Ed25519Keys: []PublicKey{{File: k.ed2PEM, KeyID: "k2"}}, Audience: "spark-api"}}
	if err := provision(t, cur); err != nil {
		t.Fatal(err)
	}
	if got := status(old, tOld); got != http.StatusNoContent {
		t.Fatalf("old key while both configs are live: %d", got)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := status(old, tOld); got != http.StatusUnauthorized {
		t.Fatalf("old key on the retired handler: %d, want 401", got)
	}
	if got := status(old, tCur); got != http.StatusNoContent {
		t.Fatalf("current key on the retired handler: %d", got)
	}
	// A key only the new config has is still refused by the old handler:
	// both must accept.
	if got := status(old, signEd(t, k.ed2, "k2", 17)); got != http.StatusUnauthorized {
		t.Fatalf("new key on the retired handler: %d, want 401", got)
	}

	// Exit: no config runs any more; the old handler finishes with its own keys.
	if err := cur.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := status(old, tOld); got != http.StatusNoContent {
		t.Fatalf("old key with no live config: %d", got)
	}
}
