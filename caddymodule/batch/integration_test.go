package batch

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/spark-edge/spark/caddymodule/internal/problem"
)

// A batch of five with four already cached reaches the origin once; each
// sub-response says how the cache answered, in request order; the entry the
// batch stored answers a plain request afterwards (the same keys).
func TestBatchServedFromCache(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 7)
	for i := 1; i <= 4; i++ {
		if r := e.get(fmt.Sprintf("/api/users/%d/profile", i), tok); r.Status != http.StatusOK {
			t.Fatalf("warm %d: %d %s", i, r.Status, r.Body)
		}
	}
	before := e.origin.totalHits()
	keepCS := []string{"Cache-Status"}
	subs := []sub{
		{ID: "p1", Path: "/api/users/1/profile", Keep: keepCS},
		{ID: "p2", Path: "/api/users/2/profile", Keep: keepCS},
		{ID: "p5", Path: "/api/users/5/profile", Keep: keepCS},
		{ID: "p3", Path: "/api/users/3/profile", Keep: keepCS},
		{ID: "p4", Path: "/api/users/4/profile", Keep: keepCS},
	}
	res := e.batchOK(tok, subs...)
	if got := e.origin.totalHits() - before; got != 1 {
		t.Fatalf("the batch reached the origin %d times, want 1", got)
	}
	if e.origin.hits("GET", "/api/users/5/profile") != 1 {
		t.Fatal("the uncached sub-request did not reach the origin")
	}
	for i, r := range res {
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d", r.ID, r.Status)
		}
		cs := r.Headers["Cache-Status"]
		if r.ID == "p5" {
			if !strings.Contains(cs, "fwd=") {
				t.Errorf("%s: Cache-Status %q, want a forward", r.ID, cs)
			}
		} else if !strings.Contains(cs, "; hit") {
			t.Errorf("%s: Cache-Status %q, want a hit", r.ID, cs)
		}
		if got := field(t, r.Body, "path"); got != subs[i].Path {
			t.Errorf("%s: body for %q", r.ID, got)
		}
		if _, ok := r.Headers["Cache-Tags"]; ok {
			t.Errorf("%s: Cache-Tags reached the client", r.ID)
		}
		if ct, ok := r.Headers["Content-Type"]; ok {
			t.Errorf("%s: Content-Type %q, want none (application/json is left out)", r.ID, ct)
		}
	}
	// What the batch stored answers a plain request.
	if r := e.get("/api/users/5/profile", tok); !strings.Contains(r.Header.Get("Cache-Status"), "; hit") {
		t.Errorf("plain GET after the batch: Cache-Status %q, want a hit", r.Header.Get("Cache-Status"))
	}
	if e.origin.hits("GET", "/api/users/5/profile") != 1 {
		t.Error("the plain GET reached the origin")
	}
	// The batch itself is never stored: the same batch again runs again
	// (its sub-requests are hits now).
	res = e.batchOK(tok, subs...)
	for _, r := range res {
		if !strings.Contains(r.Headers["Cache-Status"], "; hit") {
			t.Errorf("second batch %s: Cache-Status %q", r.ID, r.Headers["Cache-Status"])
		}
	}
}

// Private responses are cached per credential: user A's batch never gets
// user B's sub-response, and each user's second batch is a hit of its own.
func TestBatchPrivatePerUser(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	a, b := token(t, 11), token(t, 22)
	me := sub{ID: "me", Path: "/api/me", Keep: []string{"cache-status"}}
	for round := 0; round < 2; round++ {
		for _, c := range []struct {
			tok, user string
		}{{a, "11"}, {b, "22"}} {
			r := e.batchOK(c.tok, me)[0]
			if got := field(t, r.Body, "user"); got != c.user {
				t.Fatalf("round %d: user %s got the /api/me of %q", round, c.user, got)
			}
			if round == 1 && !strings.Contains(r.Headers["Cache-Status"], "; hit") {
				t.Errorf("user %s second batch: Cache-Status %q, want a hit", c.user, r.Headers["Cache-Status"])
			}
		}
	}
	if n := e.origin.hits("GET", "/api/me"); n != 2 {
		t.Errorf("/api/me reached the origin %d times, want 2 (once per user)", n)
	}
	// A's entry never answers a batch without a token.
	if r := e.batchOK("", me)[0]; r.Status != http.StatusUnauthorized {
		t.Errorf("no token: status %d %s", r.Status, r.Body)
	}
}

// The batch needs no token itself; each sub-request is checked: without a
// token the API answers 401 (problem+json) while public photos still
// answer; the sub-request may not bring an Authorization of its own.
func TestBatchAuthPerSubRequest(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	res := e.batchOK("",
		sub{ID: "me", Path: "/api/me"},
		sub{ID: "photo", Path: "/api/users/3/photos/a.jpg"},
		sub{ID: "post", Method: "POST", Path: "/api/messages", Body: map[string]string{"text": "hi"}},
	)
	if res[0].Status != http.StatusUnauthorized || res[2].Status != http.StatusUnauthorized {
		t.Errorf("statuses %d %d, want 401", res[0].Status, res[2].Status)
	}
	if ct := res[0].Headers["Content-Type"]; ct != "application/problem+json" {
		t.Errorf("401 Content-Type %q", ct)
	}
	if field(t, res[0].Body, "title") == "" {
		t.Errorf("401 body is not the problem document: %s", res[0].Body)
	}
	if res[1].Status != http.StatusOK || res[1].BodyEncoding != "base64" {
		t.Fatalf("photo: %d %q", res[1].Status, res[1].BodyEncoding)
	}
	var b64 string
	if err := json.Unmarshal(res[1].Body, &b64); err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.StdEncoding.DecodeString(b64); err != nil || raw[0] != 0xff || len(raw) != 8 {
		t.Errorf("photo body %q: %v", b64, err)
	}
	if e.origin.hits("GET", "/api/me") != 0 || e.origin.hits("POST", "/api/messages") != 0 {
		t.Error("a sub-request without a token reached the origin")
	}
	// A sub-request carrying someone's token is refused, nothing run.
	r := e.batch(token(t, 5), []sub{{ID: "x", Path: "/api/me", Headers: map[string]string{"Authorization": "Bearer " + token(t, 6)}}})
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "Authorization") {
		t.Errorf("sub-request Authorization: %d %s", r.Status, r.Body)
	}
	if e.origin.hits("GET", "/api/me") != 0 {
		t.Error("a refused batch reached the origin")
	}
}

// Unsafe sub-requests run in the order given, one at a time, each after
// everything before it; a successful write invalidates the cached target
// for the GET after it; sub-request headers and JSON bodies arrive.
func TestBatchUnsafeOrder(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 9)
	if r := e.get("/api/users/9/profile", tok); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	res := e.batchOK(tok,
		sub{ID: "a", Method: "POST", Path: "/api/w/first", Body: map[string]int{"n": 1}},
		sub{ID: "b", Method: "put", Path: "/api/w/second", Body: "plain text", Headers: map[string]string{"content-type": "text/plain"}},
		sub{ID: "g1", Path: "/api/users/9/profile", Keep: []string{"Cache-Status"}},
		sub{ID: "c", Method: "PATCH", Path: "/api/users/9/profile", Body: map[string]string{"bio": "x"}},
		sub{ID: "g2", Path: "/api/users/9/profile", Keep: []string{"Cache-Status"}},
		sub{ID: "d", Method: "DELETE", Path: "/api/w/third"},
	)
	e.origin.mu.Lock()
	writes, overlap := slices.Clone(e.origin.writes), e.origin.maxUnsafeOverlap
	e.origin.mu.Unlock()
	want := []string{"/api/w/first", "/api/w/second", "/api/users/9/profile", "/api/w/third"}
	if !slices.Equal(writes, want) {
		t.Errorf("writes reached the origin as %v, want %v", writes, want)
	}
	if overlap != 1 {
		t.Errorf("%d unsafe sub-requests ran at once, want 1", overlap)
	}
	if got := field(t, res[0].Body, "body"); got != `{"n":1}` || field(t, res[0].Body, "content_type") != "application/json" {
		t.Errorf("JSON body arrived as %q (%s)", got, res[0].Body)
	}
	if got := field(t, res[1].Body, "body"); got != "plain text" || field(t, res[1].Body, "content_type") != "text/plain" {
		t.Errorf("text body arrived as %q (%s)", got, res[1].Body)
	}
	if field(t, res[0].Body, "user") != "9" {
		t.Errorf("write not as user 9: %s", res[0].Body)
	}
	if !strings.Contains(res[2].Headers["Cache-Status"], "; hit") {
		t.Errorf("g1 Cache-Status %q, want a hit", res[2].Headers["Cache-Status"])
	}
	if cs := res[4].Headers["Cache-Status"]; strings.Contains(cs, "; hit") || !strings.Contains(cs, "fwd=") {
		t.Errorf("g2 after the PATCH: Cache-Status %q, want a forward (invalidated)", res[4].Headers["Cache-Status"])
	}
	if n := e.origin.hits("GET", "/api/users/9/profile"); n != 2 {
		t.Errorf("profile reached the origin %d times, want 2", n)
	}
}

// Bad input refuses the whole batch with problem+json and runs nothing,
// even the valid sub-requests before the bad one.
func TestBatchBadInput(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 3)
	ok := sub{ID: "ok", Method: "POST", Path: "/api/w/x", Body: map[string]int{"n": 1}}
	many := make([]sub, 9)
	for i := range many {
		many[i] = sub{ID: fmt.Sprint(i), Path: "/api/me"}
	}
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		detail      string
	}{
		{"malformed", "POST", "application/json", `{"requests":[`, 400, "not a batch"},
		{"unknown field", "POST", "application/json", `{"requests":[{"id":"a","path":"/api/me","x":1}]}`, 400, "unknown field"},
		{"trailing data", "POST", "application/json", `{"requests":[{"id":"a","path":"/api/me"}]} {}`, 400, "after the batch"},
		{"no requests", "POST", "application/json", `{}`, 422, "missing"},
		{"empty", "POST", "application/json", `{"requests":[]}`, 422, "empty"},
		{"too many", "POST", "application/json", batchBody(t, many...), 422, "at most 8"},
		{"batch too big", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Method: "POST", Path: "/api/w", Body: strings.Repeat("x", 17<<10)}), 413, "larger than 16384"},
		{"body too big", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Method: "POST", Path: "/api/w", Body: strings.Repeat("x", 1025)}), 413, "requests[1]: the body is larger than 1024"},
		{"dot segment", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api/../admin"}), 422, "not clean"},
		{"encoded dot segment", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api/%2e%2e/metrics"}), 422, "not clean"},
		{"double slash", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api//batch"}), 422, "not clean"},
		{"outside prefix", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/metrics"}), 422, "not under /api/"},
		{"absolute URL", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "http://evil/api/me"}), 422, "single /"},
		{"recursion", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Method: "POST", Path: "/api/batch", Body: map[string]any{"requests": []any{}}}), 422, "batch endpoint itself"},
		{"bad method", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Method: "TRACE", Path: "/api/me"}), 422, `method "TRACE"`},
		{"duplicate id", "POST", "application/json", batchBody(t, ok, sub{ID: "ok", Path: "/api/me"}), 422, "used twice"},
		{"missing id", "POST", "application/json", batchBody(t, ok, sub{Path: "/api/me"}), 422, "id is missing"},
		{"GET with body", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api/me", Body: "x"}), 422, "has no body"},
		{"header not allowed", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api/me", Headers: map[string]string{"Cookie": "s=1"}}), 422, "Cookie"},
		{"header injection", "POST", "application/json", batchBody(t, ok, sub{ID: "b", Path: "/api/me", Headers: map[string]string{"Accept": "a\r\nX-Evil: 1"}}), 422, "not valid"},
		{"not JSON", "POST", "text/plain", batchBody(t, ok), 415, "application/json"},
		{"GET", "GET", "", "", 405, "POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := []string{"Authorization", "Bearer " + tok}
			if c.contentType != "" {
				hdr = append(hdr, "Content-Type", c.contentType)
			}
			r := e.do(c.method, "/api/batch", c.body, hdr...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p problem.Doc
			if err := json.Unmarshal([]byte(r.Body), &p); err != nil || p.Status != c.status || p.Title == "" {
				t.Errorf("problem %s: %v", r.Body, err)
			}
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q, want it to say %q", p.Detail, c.detail)
			}
			if c.status == 405 && r.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", r.Header.Get("Allow"))
			}
		})
	}
	if n := e.origin.totalHits(); n != 0 {
		t.Errorf("refused batches reached the origin %d times", n)
	}
}

// One sub-request failing fails no other: a route error, a response over
// max_response_size, text and HEAD bodies, a request at the deadline (504)
// and one not started by then (504).
func TestBatchFailuresStayLocal(t *testing.T) {
	e := startEdge(t, strings.Replace(defaultBatchBlock, "timeout 5s", "timeout 2s", 1))
	tok := token(t, 4)
	res := e.batchOK(tok,
		sub{ID: "missing", Path: "/api/nothing"},
		sub{ID: "big", Path: "/api/big"},
		sub{ID: "text", Path: "/api/text"},
		sub{ID: "head", Method: "HEAD", Path: "/api/users/1/profile"},
		sub{ID: "me", Path: "/api/me", Headers: map[string]string{"Accept": "application/json", "Save-Data": "on"}},
		sub{ID: "slow", Method: "POST", Path: "/api/slow"},
		sub{ID: "after", Path: "/api/users/2/profile"},
	)
	want := []int{404, 502, 200, 200, 200, 504, 504}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("%s: status %d, want %d (%s)", r.ID, r.Status, want[i], r.Body)
		}
	}
	if !strings.Contains(string(res[1].Body), "larger than 4096") {
		t.Errorf("big: %s", res[1].Body)
	}
	var text string
	if err := json.Unmarshal(res[2].Body, &text); err != nil || text != "plain <text> & more" {
		t.Errorf("text body %s: %v", res[2].Body, err)
	}
	if len(res[3].Body) != 0 {
		t.Errorf("HEAD body %s", res[3].Body)
	}
	if field(t, res[4].Body, "accept") != "application/json" || field(t, res[4].Body, "save_data") != "on" {
		t.Errorf("sub-request headers did not arrive: %s", res[4].Body)
	}
	if !strings.Contains(string(res[5].Body), "not answered") || !strings.Contains(string(res[6].Body), "not started") {
		t.Errorf("deadline bodies: %s / %s", res[5].Body, res[6].Body)
	}
	if e.origin.hits("GET", "/api/users/2/profile") != 0 {
		t.Error("a sub-request after the deadline ran")
	}
}

// With streaming on and Accept: application/x-ndjson each sub-response
// is one line, as it finishes, with its index.
func TestBatchStreaming(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 8)
	subs := []sub{{ID: "a", Path: "/api/users/1/profile"}, {ID: "b", Path: "/api/me"}, {ID: "c", Method: "POST", Path: "/api/w/x"}}
	r := e.batch(tok, subs, "Accept", "application/x-ndjson")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %q %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if r.Header.Get("Cache-Control") != "private, no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(r.Body))
	for sc.Scan() {
		var sr subResponse
		if err := json.Unmarshal(sc.Bytes(), &sr); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if sr.Status/100 != 2 || subs[sr.Index].ID != sr.ID {
			t.Errorf("line %s", sc.Text())
		}
		seen[sr.ID]++
	}
	if len(seen) != 3 || seen["a"] != 1 || seen["b"] != 1 || seen["c"] != 1 {
		t.Errorf("lines %v", seen)
	}
	// Without the Accept it is one document.
	if r := e.batch(tok, subs[:1]); r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("no Accept: %q", r.Header.Get("Content-Type"))
	}
}

// Without the streaming option NDJSON is never sent.
func TestBatchStreamingOff(t *testing.T) {
	e := startEdge(t, "max_requests 4")
	r := e.batch(token(t, 8), []sub{{ID: "a", Path: "/api/users/1/profile"}}, "Accept", "application/x-ndjson")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", r.Status, r.Header.Get("Content-Type"))
	}
}

// Streamed lines come as sub-requests finish: the answer of a fast
// sub-request arrives while a slower one before it is still held at the
// origin, and the held one's line follows when the origin lets it go.
func TestBatchStreamingAsTheyFinish(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	body := batchBody(t, sub{ID: "held", Path: "/api/gate"}, sub{ID: "fast", Path: "/api/users/1/profile"})
	req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+e.site+"/api/batch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+token(t, 5))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewReader(res.Body)
	read := func() subResponse {
		t.Helper()
		line, err := lines.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read a line: %v (%q)", err, line)
		}
		var sr subResponse
		if err := json.Unmarshal(line, &sr); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return sr
	}
	first := read() // the held one cannot finish before the gate opens
	<-e.origin.gated
	if first.ID != "fast" || first.Index != 1 || first.Status != 200 {
		t.Fatalf("first line %+v, want the fast sub-request", first)
	}
	close(e.origin.gate)
	if second := read(); second.ID != "held" || second.Index != 0 || field(t, second.Body, "gate") != "open" {
		t.Fatalf("second line %+v", second)
	}
	if rest, _ := lines.ReadBytes('\n'); len(rest) != 0 {
		t.Errorf("more after the last sub-response: %q", rest)
	}
}
