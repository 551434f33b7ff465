package batch

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Batches served and rejected, sub-requests by result and the size
// histogram are counted; two handlers of one config share them.
func TestMetrics(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	var hs [2]*Handler
	for i := range hs {
		hs[i] = &Handler{}
		if err := hs[i].Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ok":
			w.WriteHeader(http.StatusOK)
		case "/api/gone":
			w.WriteHeader(http.StatusGone)
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	post := func(h *Handler, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/api/batch", bytes.NewBufferString(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.serveBatch(w, r, route)
		return w.Code
	}
	if c := post(hs[0], `{"requests":[{"id":"a","path":"/api/ok"},{"id":"b","path":"/api/gone"},{"id":"c","path":"/api/x"}]}`); c != 200 {
		t.Fatal(c)
	}
	if c := post(hs[1], `{"requests":[{"id":"a","path":"/api/ok"}]}`); c != 200 {
		t.Fatal(c)
	}
	if c := post(hs[1], `{"requests":[`); c != 400 {
		t.Fatal(c)
	}
	m := hs[0].metrics
	for labels, want := range map[string]float64{"served": 2, "rejected": 1} {
		if got := testutil.ToFloat64(m.batches.WithLabelValues(labels)); got != want {
			t.Errorf("batches %s: %v, want %v", labels, got, want)
		}
	}
	for labels, want := range map[string]float64{subSuccess: 2, subClientError: 1, subServerError: 1, subDeadline: 0} {
		if got := testutil.ToFloat64(m.subs.WithLabelValues(labels)); got != want {
			t.Errorf("subs %s: %v, want %v", labels, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(ctx.GetMetricsRegistry(), "spark_batch_size"); err != nil || n != 1 {
		t.Errorf("spark_batch_size: %d %v", n, err)
	}
}
