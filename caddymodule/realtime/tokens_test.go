package realtime

import (
	"net/http"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/authtoken"
)

// keys2 is the token options of an edge holding both test keys.
const keys2 = "hs256_secret {env." + secretEnv + "}\n\t\t\ths256_secret " + testSecret2 + " k2"

// issue2 issues a token signed with the second key (kid k2).
func issue2(t *testing.T, user int64, o authtoken.IssueOptions) string {
	t.Helper()
	o.KeyID = "k2"
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	tok, err := authtoken.Issue([]byte(testSecret2), user, o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connectWith opens a connection with tok in Authorization.
func (e *edge) connectWith(tok string) *client {
	e.t.Helper()
	c, res, err := e.dial("", http.Header{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {Subprotocol}})
	if err != nil {
		e.t.Fatalf("dial: %v (%v)", err, res)
	}
	return c
}

// TestReloadRetiringAKeyEndsItsConnections: a reload that removes the key
// a connection's token was signed with closes that connection with 4003
// before the reload returns, and keeps the connections whose tokens the
// new config accepts (they go on delivering). An upgrade the old config
// admitted while the reload ran (its admission waiting for the origin) is
// refused with 401 rather than upgraded. Then a reload that sets an audience the open tokens lack
// ends them the same way.
func TestReloadRetiringAKeyEndsItsConnections(t *testing.T) {
	e := startEdge(t, "")
	e.reloadKeys(keys2, "")
	retired := e.connectWith(token(t, 1, time.Hour))
	kept := e.connectWith(issue2(t, 2, authtoken.IssueOptions{}))
	keptAud := e.connectWith(issue2(t, 3, authtoken.IssueOptions{Audience: "spark-app"}))
	e.origin.appendAndPublish(2, "message", map[string]any{"conversation_id": 1})
	kept.until(typeEvent, 1, wait)

	// An upgrade the old config admits while the reload happens: its
	// admission waits for the origin (the log's end) meanwhile.
	hold := make(chan struct{})
	e.origin.mu.Lock()
	e.origin.eventsHold = hold
	e.origin.mu.Unlock()
	before := e.origin.count("GET /api/events")
	inWindow := make(chan *http.Response, 1)
	go func() {
		_, res, _ := e.dial("", http.Header{"Authorization": {"Bearer " + token(t, 4, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}})
		inWindow <- res
	}()
	for deadline := time.Now().Add(wait); e.origin.count("GET /api/events") == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upgrade never reached the origin")
		}
	}

	reloaded := time.Now()
	e.reloadKeys("hs256_secret "+testSecret2+" k2", "")
	if code, reason := retired.closeCode(wait); code != closeTokenRefused || reason != tokenRetiredReason {
		t.Fatalf("a connection with the retired key: close %d %q, want %d %q", code, reason, closeTokenRefused, tokenRetiredReason)
	}
	t.Logf("closed %v after the reload began", time.Since(reloaded).Round(time.Millisecond))

	// The old config's handler finishes that admission after the reload:
	// it must not upgrade a token of the retired key.
	e.origin.mu.Lock()
	e.origin.eventsHold = nil
	e.origin.mu.Unlock()
	close(hold)
	if res := <-inWindow; res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an upgrade admitted across the reload with the retired key: %v, want 401", res)
	}
	if _, res, err := e.dial("", http.Header{"Authorization": {"Bearer " + token(t, 5, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a new connection with the retired key: %v %v", err, res)
	}

	// The others stay open and deliver.
	e.origin.appendAndPublish(2, "message", map[string]any{"conversation_id": 1})
	if evs, _ := kept.until(typeEvent, 1, wait); seqs(t, evs)[0] != 2 {
		t.Fatalf("after the reload: %s", evs[0].Event)
	}
	e.origin.appendAndPublish(3, "message", map[string]any{"conversation_id": 1})
	keptAud.until(typeEvent, 1, wait)

	// An audience the token lacks: it no longer verifies.
	e.reloadKeys("hs256_secret "+testSecret2+" k2\n\t\t\taudience spark-app", "")
	if code, reason := kept.closeCode(wait); code != closeTokenRefused || reason != tokenRetiredReason {
		t.Fatalf("a token without the new audience: close %d %q", code, reason)
	}
	e.origin.appendAndPublish(3, "message", map[string]any{"conversation_id": 1})
	if evs, _ := keptAud.until(typeEvent, 1, wait); seqs(t, evs)[0] != 2 {
		t.Fatalf("a token with the audience after the reload: %s", evs[0].Event)
	}
	if n := e.edgeMetric("spark_websocket_closes_total", "code", "4003"); n != 2 {
		t.Fatalf("spark_websocket_closes_total{code=4003} = %v, want 2", n)
	}
}
