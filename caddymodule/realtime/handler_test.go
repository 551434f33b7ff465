package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/authtoken"
)

// TestAuthentication: the token in Authorization or in the subprotocol
// spark.token.<jwt> (never echoed); none, a bad one or two → 401; the
// subprotocol spark.v1 is required.
func TestAuthentication(t *testing.T) {
	e := startEdge(t, "")
	tok := token(t, 1, time.Hour)
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"header", http.Header{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {Subprotocol}}, 101},
		{"subprotocol", http.Header{"Sec-WebSocket-Protocol": {Subprotocol + ", " + tokenSubprotocolPrefix + tok}}, 101},
		{"none", http.Header{"Sec-WebSocket-Protocol": {Subprotocol}}, 401},
		{"bad token", http.Header{"Authorization": {"Bearer " + tok + "x"}, "Sec-WebSocket-Protocol": {Subprotocol}}, 401},
		{"expired", http.Header{"Authorization": {"Bearer " + expiredToken(t, 1)}, "Sec-WebSocket-Protocol": {Subprotocol}}, 401},
		{"both", http.Header{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {Subprotocol + ", " + tokenSubprotocolPrefix + tok}}, 401},
		{"no spark.v1", http.Header{"Authorization": {"Bearer " + tok}}, 400},
		{"other protocol only", http.Header{"Sec-WebSocket-Protocol": {"chat, " + tokenSubprotocolPrefix + tok}}, 400},
	} {
		c, res, err := e.dial("", tc.hdr)
		if res == nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.status)
			continue
		}
		if tc.status != 101 {
			if res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %q", tc.name, res.Header.Get("Content-Type"))
			}
			continue
		}
		if got := res.Header.Get("Sec-WebSocket-Protocol"); got != Subprotocol || c.ws.Subprotocol() != Subprotocol {
			t.Errorf("%s: answered protocol %q", tc.name, got)
		}
	}
}

// expiredToken is a token for user whose exp passed an hour ago.
func expiredToken(t testing.TB, user int64) string {
	t.Helper()
	tok, err := authtoken.Issue([]byte(testSecret), user, authtoken.IssueOptions{TTL: time.Minute, Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestNotAWebSocket: a plain GET is answered 426 Upgrade Required.
func TestNotAWebSocket(t *testing.T) {
	e := startEdge(t, "")
	res, err := caddytest.Exchange(e.addr, "GET", "/api/realtime", "", "Authorization", "Bearer "+token(t, 1, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusUpgradeRequired || res.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("%d %v", res.Status, res.Header)
	}
}

// TestAllowedOrigins: without allowed_origins only non-browsers and the
// same host connect; listed origins connect; others get 403.
func TestAllowedOrigins(t *testing.T) {
	e := startEdge(t, "allowed_origins https://app.spark.example")
	tok := token(t, 1, time.Hour)
	for origin, want := range map[string]int{
		"":                                       101,
		"http://" + e.addr:                       101,
		"https://app.spark.example":              101,
		"https://evil.example":                   403,
		"https://app.spark.example.evil.example": 403,
	} {
		hdr := http.Header{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {Subprotocol}}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		_, res, _ := e.dial("", hdr)
		if res == nil || res.StatusCode != want {
			t.Errorf("Origin %q: %v, want %d", origin, res, want)
		}
	}
}

// TestSinceParameter: since must be a non-negative integer, given once.
func TestSinceParameter(t *testing.T) {
	e := startEdge(t, "")
	hdr := http.Header{"Authorization": {"Bearer " + token(t, 1, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	for _, q := range []string{"since=-1", "since=x", "since=1&since=2", "since="} {
		if _, res, _ := e.dial(q, hdr); res == nil || res.StatusCode != 400 {
			t.Errorf("%s: %v", q, res)
		}
	}
}

// TestOriginRefusesAtConnect: the origin's 401 on the conversation list
// is a 401; the origin unavailable a 503 with Retry-After.
func TestOriginRefusesAtConnect(t *testing.T) {
	e := startEdge(t, "")
	hdr := http.Header{"Authorization": {"Bearer " + token(t, 1, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	e.origin.setFailing(true)
	if _, res, _ := e.dial("", hdr); res == nil || res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("origin down: %v", res)
	}
	e.origin.setFailing(false)
	e.origin.revoke(1)
	if _, res, _ := e.dial("", hdr); res == nil || res.StatusCode != 401 {
		t.Fatalf("token revoked: %v", res)
	}
	if n := e.broker.subscribed(1); n != 0 {
		t.Fatalf("refused connections left %d subscriptions", n)
	}
}

// TestResumeRefusedWhenOriginOverloaded: a resume whose replay the origin
// does not start within admission_timeout (its calls stuck, or waiting for
// a call slot) is refused before the upgrade with 503, a Retry-After and a
// problem saying why, rather than held open; it leaves no subscription,
// and the same resume once the origin answers replays all.
func TestResumeRefusedWhenOriginOverloaded(t *testing.T) {
	e := startEdge(t, "admission_timeout 200ms\n\t\t\tin_flight 8 1")
	for range 3 {
		e.origin.append(1, "message", map[string]any{"conversation_id": 1})
	}
	hold := make(chan struct{})
	e.origin.mu.Lock()
	e.origin.eventsHold = hold
	e.origin.mu.Unlock()
	refused := e.edgeMetric("spark_websocket_admissions_refused_total", `cause="origin"`) // shared by the process's tests
	hdr := http.Header{"Authorization": {"Bearer " + token(t, 1, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	// Each is stuck in the origin's call or waits behind one for the edge's
	// only call slot; a live-only connection's call to the log is held too.
	stuck := make(chan *http.Response, 1)
	go func() {
		_, res, _ := e.dial("since=0", hdr)
		stuck <- res
	}()
	for _, q := range []string{"since=0", ""} {
		_, res, err := e.dial(q, hdr)
		if err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%q with the origin stuck: %v %v, want 503", q, res, err)
		}
		checkRefusal(t, res)
	}
	if res := <-stuck; res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the stuck resume: %v, want 503", res)
	} else {
		checkRefusal(t, res)
	}
	if n := e.broker.subscribed(1); n != 0 {
		t.Fatalf("refused connections left %d subscriptions", n)
	}
	if got := e.edgeMetric("spark_websocket_admissions_refused_total", `cause="origin"`) - refused; got != 3 {
		t.Fatalf("admissions refused (origin) +%v, want +3", got)
	}
	close(hold)
	c := e.connect(1, "since=0")
	if evs, _ := c.until(typeEvent, 3, wait); fmt.Sprint(seqs(t, evs)) != "[1 2 3]" {
		t.Fatalf("resumed: %v", seqs(t, evs))
	}
}

// checkRefusal checks a refusal's retry hint and problem document.
func checkRefusal(t *testing.T, res *http.Response) {
	t.Helper()
	after, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || after < 1 || after > retrySpread {
		t.Errorf("Retry-After %q, want 1..%d", res.Header.Get("Retry-After"), retrySpread)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if res.Header.Get("Content-Type") != "application/problem+json" || json.NewDecoder(res.Body).Decode(&p) != nil ||
		p.Status != 503 || !strings.Contains(p.Detail, "overloaded") || !strings.Contains(p.Detail, "since") {
		t.Errorf("problem %+v (%s), want a 503 saying the origin is overloaded", p, res.Header.Get("Content-Type"))
	}
}

// accessLogWithFilter is an access log as the README says to write one
// in front of spark_realtime: Caddy redacts Authorization itself; the
// token subprotocol needs this filter.
const accessLogWithFilter = `	log {
		output file %s
		format filter {
			wrap json
			fields {
				request>headers>Sec-Websocket-Protocol regexp "spark\.token\.[^ ,]+" "spark.token.REDACTED"
			}
		}
	}
`

// TestTokensNeverLogged: with an access log (filtered as the README says),
// neither a header token nor a subprotocol token appears in any log line,
// of accepted and refused connections alike.
func TestTokensNeverLogged(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	t.Setenv(secretEnv, testSecret)
	name := "TestTokensNeverLogged"
	o := newFakeOrigin(t, brokerFor(name))
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string {
		text := edgeCaddyfile(ports[0], ports[1], o.url(), name, "")
		return strings.Replace(text, "\tbind 127.0.0.1\n", "\tbind 127.0.0.1\n"+fmt.Sprintf(accessLogWithFilter, logFile), 1)
	})
	e := &edge{t: t, addr: "127.0.0.1:" + itoa(ports[1]), admin: ports[0], origin: o, broker: brokerFor(name)}
	tok1, tok2 := token(t, 1, time.Hour), token(t, 2, time.Hour)
	c1, _, err := e.dial("", http.Header{"Authorization": {"Bearer " + tok1}, "Sec-WebSocket-Protocol": {Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := e.dial("", http.Header{"Sec-WebSocket-Protocol": {Subprotocol + ", " + tokenSubprotocolPrefix + tok2}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = e.dial("", http.Header{"Sec-WebSocket-Protocol": {Subprotocol + ", " + tokenSubprotocolPrefix + tok2 + "x"}})
	_ = c1.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	_ = c2.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	var data []byte
	deadline := time.Now().Add(wait)
	for bytes.Count(data, []byte("\n")) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		data, _ = os.ReadFile(logFile)
	}
	if bytes.Count(data, []byte("/api/realtime")) < 3 {
		t.Fatalf("access log: %s", data)
	}
	for _, tok := range []string{tok1, tok2, strings.SplitN(tok1, ".", 3)[2], strings.SplitN(tok2, ".", 3)[2]} {
		if bytes.Contains(data, []byte(tok)) {
			t.Fatalf("a token is in the access log:\n%s", data)
		}
	}
	if !bytes.Contains(data, []byte(tokenSubprotocolPrefix+"REDACTED")) {
		t.Fatalf("the redacted subprotocol is not in the log:\n%s", data)
	}
}
