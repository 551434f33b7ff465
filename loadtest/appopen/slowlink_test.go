package appopen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProxyDelaysAndCounts sends requests through a 100 ms, 1 Mbit/s link:
// a first request costs at least two round trips (the connection, then
// the exchange), the next on the same connection one, a 40 KB body at
// least its serialization time; the bytes counted are those that crossed.
// Only lower bounds are checked: a loaded machine is slower, never faster.
func TestProxyDelaysAndCounts(t *testing.T) {
	body := strings.Repeat("x", 40<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = io.WriteString(w, body)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	link := Link{RTT: 100 * time.Millisecond, Mbps: 1}
	px, err := NewProxy(link, strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	get := func(path string) (time.Duration, string) {
		t.Helper()
		start := time.Now()
		res, err := client.Get("http://" + px.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), string(b)
	}
	if d, b := get("/"); b != "ok" || d < 2*link.RTT {
		t.Errorf("first request: %q in %v, want ≥ %v", b, d, 2*link.RTT)
	}
	if d, _ := get("/"); d < link.RTT {
		t.Errorf("second request: %v, want ≥ %v", d, link.RTT)
	}
	up0, down0 := px.Bytes()
	d, b := get("/big")
	if b != body {
		t.Fatalf("big body: %d bytes", len(b))
	}
	if min := link.RTT + time.Duration(float64(len(body)*8)/1e6*float64(time.Second)); d < min {
		t.Errorf("40 KB at 1 Mbit/s: %v, want ≥ %v", d, min)
	}
	up, down := px.Bytes()
	if down-down0 < int64(len(body)) || up-up0 < int64(len("GET /big HTTP/1.1\r\n")) {
		t.Errorf("bytes counted: up %d down %d", up-up0, down-down0)
	}
	if px.Conns() != 1 {
		t.Errorf("%d connections, want 1 (kept alive)", px.Conns())
	}
	if _, err := NewProxy(Link{RTT: time.Millisecond}, "127.0.0.1:1"); err == nil {
		t.Error("a link without bandwidth accepted")
	}
}

func TestVerdicts(t *testing.T) {
	ms := time.Millisecond
	r := Result{
		Slowest: Form{Latency: []time.Duration{100 * ms, 150 * ms}, BytesUp: 300, BytesDown: 500, RoundTrips: 1},
		Five:    Form{Latency: []time.Duration{110 * ms}, BytesUp: 1500, BytesDown: 2100, RoundTrips: 5},
		Batch:   Form{Latency: []time.Duration{120 * ms, 170 * ms}, BytesUp: 400, BytesDown: 800, RoundTrips: 1},
	}
	v := r.Verdicts()
	if !v.P95OK || v.P95Ratio < 1.13 || v.P95Ratio > 1.14 || !v.BytesOK || v.BytesRatio != 3 || !v.TripsOK || !v.OK() {
		t.Errorf("verdicts %+v", v)
	}
	var sb strings.Builder
	r.Write(&sb)
	for _, want := range []string{"PASS", "1.13", "3.00", "5.00"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, sb.String())
		}
	}
}
