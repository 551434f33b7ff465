package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

// spark_auth_requests_total counts accepted, preflight and refused
// requests, refusals by reason; two handlers of one config share it.
func TestMetrics(t *testing.T) {
	k := newTestKeys(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	var hs [2]*Handler
	for i := range hs {
		hs[i] = &Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: testSecret}}, Ed25519Keys: []PublicKey{{File: k.ed1PEM, KeyID: "k1"}}}}
		if err := hs[i].Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hs[i].Cleanup() })
	}
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, _ *http.Request) error { return nil })
	serve := func(h *Handler, method string, hdr ...string) {
		r, _ := request(method, "/api/me", hdr...)
		if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
	}
	good := "Bearer " + signEd(t, k.ed1, "k1", 1)
	serve(hs[0], "GET", "Authorization", good)
	serve(hs[1], "GET", "Authorization", good)
	serve(hs[0], "GET")
	serve(hs[1], "GET", "Authorization", "Bearer a.b.c")
	serve(hs[0], "GET", "Authorization", "Bearer "+signEd(t, k.ed1, "k7", 1))
	serve(hs[1], "OPTIONS", "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
	m := hs[0].metrics.requests
	for labels, want := range map[[2]string]float64{
		{"accepted", ""}: 2, {"preflight", ""}: 1, {"refused", "missing"}: 1, {"refused", "malformed"}: 1,
		{"refused", "unknown_key"}: 1, {"refused", "expired"}: 0,
	} {
		if got := testutil.ToFloat64(m.WithLabelValues(labels[0], labels[1])); got != want {
			t.Errorf("%v: %v, want %v", labels, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(ctx.GetMetricsRegistry(), "spark_auth_requests_total"); err != nil || n == 0 {
		t.Fatalf("not registered: %d %v", n, err)
	}
}
