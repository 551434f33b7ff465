package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// POST /api/batch through the repository's Caddyfile: each sub-request
// runs through the site again (spark_auth, spark_cache, the proxy), cached
// ones never reach the origin, the batch needs no token of its own but its
// sub-requests do, and bad paths (the batch itself too) refuse the batch.
func TestRepoCaddyfileBatch(t *testing.T) {
	e := startRepoEdge(t, "127.0.0.1")
	if r := e.do("GET", "/api/users/7/profile", ""); r.status != 200 {
		t.Fatalf("warm: %d %s", r.status, r.body)
	}
	before := len(e.origin.Paths())
	post := func(tok, body string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://127.0.0.1:"+strconv.Itoa(e.port)+"/api/batch", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var rd io.Reader = res.Body
		if res.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header, string(b)
	}
	type subRes struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	}
	decode := func(body string) []subRes {
		t.Helper()
		var out struct {
			Responses []subRes `json:"responses"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return out.Responses
	}
	status, hdr, body := post(e.token, `{"response_headers":["Cache-Status"],"requests":[
		{"id":"cached","path":"/api/users/7/profile"},
		{"id":"new","path":"/api/users/8/profile"}]}`)
	if status != 200 || hdr.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("%d %q %s", status, hdr.Get("Cache-Control"), body)
	}
	res := decode(body)
	if len(res) != 2 || res[0].Status != 200 || res[1].Status != 200 || !strings.HasPrefix(string(res[1].Body), `"origin /api/users/8/profile`) {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(res[0].Headers["Cache-Status"], "hit") {
		t.Errorf("cached: Cache-Status %q", res[0].Headers["Cache-Status"])
	}
	if seen := e.origin.Paths()[before:]; len(seen) != 1 || seen[0] != "/api/users/8/profile" {
		t.Errorf("the origin saw %v, want only /api/users/8/profile", seen)
	}
	// Streaming through the site's encode: NDJSON lines, gzip on the wire.
	status, hdr, body = post(e.token, `{"requests":[{"id":"a","path":"/api/users/7/profile"},{"id":"b","path":"/api/users/8/profile"}]}`,
		"Accept", "application/x-ndjson", "Accept-Encoding", "gzip")
	if status != 200 || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("streaming: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	if lines := strings.Split(strings.TrimSpace(body), "\n"); len(lines) != 2 || !strings.Contains(body, `"id":"a"`) || !strings.Contains(body, `"id":"b"`) {
		t.Errorf("streamed lines: %q", body)
	}
	// A gzip batch body, as the app sends it: decoded through the site.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, `{"requests":[{"id":"a","path":"/api/users/7/profile"}]}`)
	_ = zw.Close()
	status, _, body = post(e.token, zb.String(), "Content-Encoding", "gzip", "Accept-Encoding", "gzip")
	if res := decode(body); status != 200 || len(res) != 1 || res[0].Status != 200 {
		t.Errorf("gzip body: %d %s", status, body)
	}
	// No token: the batch runs, its API sub-requests are refused.
	status, _, body = post("", `{"requests":[{"id":"a","path":"/api/users/7/profile"}]}`)
	if res := decode(body); status != 200 || res[0].Status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", status, body)
	}
	// Bad input: problem+json, nothing run.
	for _, p := range []string{"/metrics", "/api/BATCH", "/api/../metrics"} {
		status, hdr, body = post(e.token, `{"requests":[{"id":"a","path":"/api/users/9/profile"},{"id":"b","path":"`+p+`"}]}`)
		if status != http.StatusUnprocessableEntity || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("path %s: %d %q %s", p, status, hdr.Get("Content-Type"), body)
		}
	}
	for _, p := range e.origin.Paths() {
		if p == "/api/users/9/profile" {
			t.Error("a refused batch reached the origin")
		}
	}
}
