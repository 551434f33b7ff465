package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/tiered"
)

// Every Cache-Status value the cache sends, as the README lists them.
func TestCacheStatusString(t *testing.T) {
	for _, tc := range []struct {
		s    cacheStatus
		want string
	}{
		{cacheStatus{ttl: 117, layer: tiered.LayerL1}, "spark; hit; ttl=117; detail=l1"},
		{cacheStatus{ttl: 5, layer: tiered.LayerL2, detail: "coalesced"}, "spark; hit; ttl=5; detail=l2-coalesced"},
		{cacheStatus{ttl: -3, layer: tiered.LayerL1, detail: "stale-while-revalidate"}, "spark; hit; ttl=-3; detail=l1-stale-while-revalidate"},
		{cacheStatus{fwd: fwdMiss, stored: true}, "spark; fwd=miss; stored"},
		{cacheStatus{fwd: fwdMiss, detail: "private"}, "spark; fwd=miss; detail=private"},
		{cacheStatus{fwd: fwdStale, stored: true}, "spark; fwd=stale; stored"},
		{cacheStatus{fwd: fwdStale, fwdStatus: 304, layer: tiered.LayerL1, detail: detailRevalidated}, "spark; fwd=stale; fwd-status=304; detail=l1-revalidated"},
		{cacheStatus{fwd: fwdStale, fwdStatus: 503, layer: tiered.LayerL1, detail: detailStaleIfError}, "spark; fwd=stale; fwd-status=503; detail=stale-if-error"},
		{cacheStatus{fwd: fwdStale, layer: tiered.LayerL2, detail: detailStaleIfError}, "spark; fwd=stale; detail=stale-if-error"},
		{cacheStatus{fwd: fwdRequest, detail: "denied"}, "spark; fwd=request; detail=denied"},
		{cacheStatus{fwd: fwdBypass, detail: "method"}, "spark; fwd=bypass; detail=method"},
		{cacheStatus{fwd: fwdBypass}, "spark; fwd=bypass"},
		{cacheStatus{fwd: fwdMiss, detail: "only-if-cached"}, "spark; fwd=miss; detail=only-if-cached"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}

// The placeholders say what Cache-Status says, and which tier answered, on
// a miss and on a hit.
func TestCacheStatusPlaceholders(t *testing.T) {
	c, now := newUnitCache(t, Policy{}, nil)
	origin := handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "max-age=100")
		_, err := w.Write([]byte("placeholders"))
		return err
	})
	for _, want := range []struct{ status, layer string }{
		{"spark; fwd=miss; stored", "origin"},
		{"spark; hit; ttl=90; detail=l1", "l1"},
	} {
		repl := caddy.NewReplacer()
		r := httptest.NewRequest(http.MethodGet, "http://spark.test/p", nil)
		w := serve(t, c, withThisReplacer(r, repl), origin)
		status, _ := repl.GetString(placeholderStatus)
		layer, _ := repl.GetString(placeholderLayer)
		if status != want.status || layer != want.layer || w.Header().Get("Cache-Status") != status {
			t.Errorf("placeholders %q %q, Cache-Status %q; want %q %q", status, layer, w.Header().Get("Cache-Status"), want.status, want.layer)
		}
		*now = now.Add(10 * time.Second)
	}
}
