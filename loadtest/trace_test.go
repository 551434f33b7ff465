package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const traceScenario = `
name: trace
endpoints:
  read:
    path: /item/{{.Me}}
  write:
    method: POST
    path: /item/{{.Me}}
    body: '{"n": {{.Me}}}'
    check: profile_update
flows:
  - name: f
    weight: 1
    steps: [read, write]
`

// The trace has one line per measured request: the user, the endpoint,
// the path, the status, Cache-Status verbatim, a write's body and its
// response.
func TestRunTrace(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Cache-Status", "spark; hit; ttl=10")
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"version":1}`))
	}))
	defer srv.Close()
	var buf bytes.Buffer
	_, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, traceScenario), Mode: ModeOpen,
		Rate: 40, Duration: time.Second, Users: 3, JWTSecret: "other-secret", Trace: &buf})
	if err != nil {
		t.Fatal(err)
	}
	reads, writes := 0, 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var rec TraceRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if rec.User < 1 || rec.User > 3 || rec.Sent == 0 || !strings.HasPrefix(rec.Path, "/item/") {
			t.Errorf("record %+v: user, time or path wrong", rec)
		}
		switch rec.Endpoint {
		case "read":
			reads++
			if rec.Method != http.MethodGet || rec.Status != 200 || rec.CacheStatus != "spark; hit; ttl=10" || rec.Body != "" || rec.Response != "" {
				t.Errorf("read record %+v", rec)
			}
		case "write":
			writes++
			if rec.Method != http.MethodPost || rec.Status != 201 || rec.Body == "" || !strings.Contains(rec.Body, `"n": `) || rec.Response != `{"version":1}` {
				t.Errorf("write record %+v", rec)
			}
		default:
			t.Errorf("endpoint %q", rec.Endpoint)
		}
	}
	if reads == 0 || writes == 0 {
		t.Errorf("trace: %d reads, %d writes; want both", reads, writes)
	}
}
