package appopen

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The phone speaks HTTP/2 without TLS with H2C, HTTP/1.1 without; its
// batch body is gzip and asks for the fields given, nothing else.
func TestPhoneProtocolAndBatchBody(t *testing.T) {
	var got struct {
		proto, coding string
		body          map[string]any
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.proto, got.coding, got.body = r.Proto, r.Header.Get("Content-Encoding"), nil
		if zr, err := gzip.NewReader(r.Body); err == nil {
			b, _ := io.ReadAll(zr)
			_ = json.Unmarshal(b, &got.body)
		}
		w.Header().Set("Content-Type", "application/json")
		if _, asked := got.body["response_headers"]; !asked { // as the edge: Cache-Status only when asked for
			_, _ = io.WriteString(w, `{"responses":[{"id":"0","index":0,"status":200}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"responses":[{"id":"0","index":0,"status":200,"headers":{"Cache-Status":"spark; hit"}}]}`)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	for _, c := range []struct {
		h2c   bool
		proto string
		keep  []string
		hits  int
	}{{false, "HTTP/1.1", nil, 0}, {true, "HTTP/2.0", []string{"Cache-Status"}, 1}} {
		ph, err := newPhone(Config{Target: srv.URL, Token: "t", Link: Link{RTT: time.Millisecond, Mbps: 100}, H2C: c.h2c})
		if err != nil {
			t.Fatal(err)
		}
		hits, err := ph.batch(t.Context(), []string{"/api/x"}, c.keep...)
		ph.close()
		if err != nil {
			t.Fatal(err)
		}
		if got.proto != c.proto || got.coding != "gzip" || hits != c.hits {
			t.Errorf("h2c %v: %s, Content-Encoding %q, %d hits", c.h2c, got.proto, got.coding, hits)
		}
		_, asked := got.body["response_headers"]
		if asked != (len(c.keep) > 0) || got.body["requests"] == nil {
			t.Errorf("h2c %v: batch body %v", c.h2c, got.body)
		}
	}
}
