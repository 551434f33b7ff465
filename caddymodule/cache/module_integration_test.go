package cache

// Integration tests of the module's life in Caddy (module.go, pool.go,
// metrics.go): reloads, metrics.

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// TestIntegrationReloadKeepsEntries: a config reload with the same cache keeps
// the stored entries and tag index, switches the purge token, and drops no
// in-flight request.
func TestIntegrationReloadKeepsEntries(t *testing.T) {
	e := startEdge(t, "")
	// /slow is answered only once the reload has returned: it is in flight
	// across the reload whatever the machine's speed.
	slowArrived, reloaded := make(chan struct{}, 1), newGate(t)
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowArrived <- struct{}{}
			if !reloaded.wait(r) {
				return
			}
		}
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Cache-Tags", "reload")
		_, _ = io.WriteString(w, "kept "+r.URL.Path)
	})
	e.get("/kept")
	e.get("/kept2")
	expect(t, "before reload", e.get("/kept"), 200, "kept /kept", true)

	inflight := e.getAsync("/slow")
	select {
	case <-slowArrived:
	case r := <-inflight:
		t.Fatalf("request meant to be in flight during the reload ended first: %d %q", r.status, r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("the request meant to be in flight during the reload never reached the origin")
	}

	block := strings.Replace(defaultCacheBlock, "purge_token "+testPurgeToken, "purge_token rotated-token", 1)
	block = strings.Replace(block, "rule /ttl/* {", "rule /added/* {\n\t\t\tttl 1m\n\t\t}\n\t\trule /ttl/* {", 1)
	e.reload(block)
	reloaded.open()

	if r := <-inflight; r.status != 200 || r.body != "kept /slow" {
		t.Errorf("request in flight during the reload: %d %q", r.status, r.body)
	}
	expect(t, "after reload", e.get("/kept"), 200, "kept /kept", true)
	if n := e.origin.hits("GET", "/kept"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	if m := e.adminDo("GET", "/metrics", "", ""); !regexp.MustCompile(`spark_cache_requests_total\{cache="default",layer="l1",result="hit"\} [2-9]`).MatchString(m.body) {
		t.Errorf("hit counter not carried over the reload")
	}
	if r := e.adminDo("POST", purgePath, testPurgeToken, `{"tags":["reload"]}`); r.status != 401 {
		t.Errorf("old purge token after reload: %d", r.status)
	}
	r := e.adminDo("POST", purgePath, "rotated-token", `{"tags":["reload"]}`)
	if r.status != 200 || !strings.Contains(r.body, `"removed":3`) {
		t.Errorf("purge by a tag indexed before the reload: %d %s", r.status, r.body)
	}
	expect(t, "purged after reload", e.get("/kept2"), 200, "kept /kept2", false)
}

// TestIntegrationMetrics: the cache's metrics are on the admin /metrics.
func TestIntegrationMetrics(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(serveWith(200, "m", "Cache-Control", "max-age=100"))
	e.get("/m")
	e.get("/m")
	e.get("/m")
	e.do("POST", "/elsewhere")
	r := e.adminDo("GET", "/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	for _, want := range []string{
		`spark_cache_requests_total{cache="default",layer="l1",result="hit"} 2`,
		`spark_cache_requests_total{cache="default",layer="origin",result="miss"} 1`,
		`spark_cache_requests_total{cache="default",layer="origin",result="bypass"} 1`,
		`spark_cache_entries{cache="default"}`,
		`spark_cache_bytes{cache="default"}`,
		`spark_cache_origin_fetch_seconds_count{cache="default"} 1`,
		`spark_cache_purged_entries_total{cache="default"}`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !regexp.MustCompile(`spark_cache_entries\{cache="default"\} [1-9]`).MatchString(r.body) {
		t.Errorf("spark_cache_entries is not positive")
	}
}

// TestIntegrationRuleMatchers: rules select their requests with Caddy's
// matchers, in order, the first selecting one applying; `rule <pattern>`
// is a path matcher (case-insensitive, on the cleaned path).
func TestIntegrationRuleMatchers(t *testing.T) {
	e := startEdge(t, `spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
		rule {
			match {
				path /m/*
				header Save-Data on
			}
			match {
				method HEAD
			}
			ttl 1m
		}
		rule /m/* {
			ttl 10m
		}
	}`)
	e.origin.handle(serveWith(200, "matched", "Cache-Control", "max-age=5"))
	for _, c := range []struct {
		path string
		hdr  []string
		ttl  int
	}{
		{"/m/lite", []string{"Save-Data", "on"}, 60},
		{"/m/full", nil, 600},
		{"/M/Upper", nil, 600},
		{"/m/x/../dots", nil, 600},
		{"/other", nil, 5},
	} {
		e.get(c.path, c.hdr...)
		r := e.get(c.path, c.hdr...)
		if ttl := ttlOf(r); !r.isHit() || ttl < c.ttl-3 || ttl > c.ttl {
			t.Errorf("%s %q: Cache-Status %q, want a hit with ttl about %d", c.path, c.hdr, r.cacheStatus(), c.ttl)
		}
	}
}

// TestIntegrationPlaceholders: {http.spark_cache.status} and
// {http.spark_cache.layer} say what Cache-Status says and which tier
// answered, for later handlers and logs; the 504 of only-if-cached reaches
// handle_errors, with its Cache-Status.
func TestIntegrationPlaceholders(t *testing.T) {
	e, _ := startEdgeWith(t, 2, func(p []int, originAddr string) string {
		return caddytest.GlobalOptions(p[0], "") + `
http://:` + strconv.Itoa(p[1]) + ` {
	bind 127.0.0.1
	header >X-Spark-Cache "{http.spark_cache.status}|{http.spark_cache.layer}"
	spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
	}
	reverse_proxy ` + originAddr + `
	handle_errors {
		respond "{err.status_code} {http.spark_cache.status}|{http.spark_cache.layer}"
	}
}
`
	})
	e.origin.handle(serveWith(200, "p", "Cache-Control", "max-age=100"))
	for i, layer := range []string{"origin", "l1"} {
		r := e.get("/p")
		if got, want := r.header.Get("X-Spark-Cache"), r.cacheStatus()+"|"+layer; got != want || r.cacheStatus() == "" {
			t.Errorf("response #%d: placeholders %q, want %q", i, got, want)
		}
	}
	r := e.get("/never", "Cache-Control", "only-if-cached")
	if r.status != http.StatusGatewayTimeout || r.body != "504 spark; fwd=miss; detail=only-if-cached|origin" ||
		r.cacheStatus() != "spark; fwd=miss; detail=only-if-cached" {
		t.Errorf("only-if-cached miss: %d %q, Cache-Status %q", r.status, r.body, r.cacheStatus())
	}
}
