package main

// BenchmarkServerHit: one L1 hit through Caddy's whole per-request pipeline
// (caddyhttp.Server.ServeHTTP: replacer, vars, routes, matchers, Caddy's
// metrics when on, logging, our handler), without net/http's parsing and
// the socket, for configurations side by side: Caddy's respond (the
// reference), a minimal spark_cache config with and without Caddy's
// `metrics`, and the repository's Caddyfile with and without it.
// allocs/op and B/op are exact; ns/op moves with the machine's load.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/internal/testutil"
)

// benchBody is the 1 KB the origin serves.
var benchBody = strings.Repeat("x", 1024)

// hitWriter is a cheap reusable http.ResponseWriter.
type hitWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *hitWriter) Header() http.Header         { return w.h }
func (w *hitWriter) WriteHeader(s int)           { w.status = s }
func (w *hitWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func BenchmarkServerHit(b *testing.B) {
	repo, err := os.ReadFile(filepath.Join("..", "..", "Caddyfile"))
	if err != nil {
		b.Fatal(err)
	}
	repoNoMetrics := strings.Replace(string(repo), "\tmetrics\n", "", 1)
	if repoNoMetrics == string(repo) {
		b.Fatal("the repository's Caddyfile has no `metrics` line")
	}
	minimal := func(metrics string) string {
		return "{\n\tadmin {$SPARK_ADMIN}\n" + metrics + "}\nhttp://{$SPARK_LISTEN} {\n\tspark_cache\n\treverse_proxy {$SPARK_ORIGIN}\n}\n"
	}
	for _, c := range []struct{ name, text string }{
		{"respond", "{\n\tadmin {$SPARK_ADMIN}\n}\nhttp://{$SPARK_LISTEN} {\n\theader Cache-Control \"public, max-age=300\"\n\trespond `" + benchBody + "` 200\n}\n"},
		{"minimal", minimal("")},
		{"minimal+metrics", minimal("\tmetrics\n")},
		{"repo", string(repo)},
		{"repo-without-metrics", repoNoMetrics},
	} {
		// SPARK_LISTEN with a host (127.0.0.1:port) and without (:port).
		b.Run(c.name+"/host", func(b *testing.B) { benchServerHit(b, c.text, false) })
		b.Run(c.name+"/any", func(b *testing.B) { benchServerHit(b, c.text, true) })
	}
}

func benchServerHit(b *testing.B, text string, anyAddr bool) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchBody)
	}))
	defer origin.Close()
	ports := testutil.FreePorts(b, 2)
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	if anyAddr {
		// What deploy/compose.yaml and the systemd unit run: no host in
		// the site address, so Caddy puts the site's routes at the top
		// level (compiled once) instead of in a host-matched subroute
		// (compiled on every request).
		b.Setenv("SPARK_LISTEN", ":"+strconv.Itoa(ports[0]))
	} else {
		b.Setenv("SPARK_LISTEN", listen)
	}
	b.Setenv("SPARK_ADMIN", "127.0.0.1:"+strconv.Itoa(ports[1]))
	b.Setenv("SPARK_ORIGIN", strings.TrimPrefix(origin.URL, "http://"))
	b.Setenv("SPARK_JWT_SECRET", "spark-server-bench-secret-not-for-production")
	b.Setenv("SPARK_EVENTS_TOKEN", "spark-server-bench-events-token")
	b.Setenv("SPARK_PURGE_TOKEN", "")
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		b.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		b.Fatal(err)
	}
	cfg["admin"].(map[string]any)["config"] = map[string]any{"persist": false}
	cfg["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}}
	patched, _ := json.Marshal(cfg)
	if err := caddy.Load(patched, true); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()
	app, err := caddy.ActiveContext().App("http")
	if err != nil {
		b.Fatal(err)
	}
	var srv *caddyhttp.Server
	for _, s := range app.(*caddyhttp.App).Servers {
		srv = s
	}
	r := httptest.NewRequest(http.MethodGet, "http://"+listen+"/static/p.json", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("User-Agent", "Spark/3.1 (iPhone; iOS 18.1)")
	r.Header.Set("Accept", "application/json")
	srv.ServeHTTP(&hitWriter{h: make(http.Header)}, r) // the fill
	w := &hitWriter{h: make(http.Header)}
	srv.ServeHTTP(w, r)
	if w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("hit: status %d, %d bytes, header %v", w.status, w.n, w.h)
	}
	if cs := w.h.Get("Cache-Status"); cs != "" && !strings.Contains(cs, "; hit") {
		b.Fatalf("not a hit: Cache-Status %q", cs)
	}
	b.ReportAllocs()
	gc0, cpu0 := readGC(), testutil.ProcessCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.h = make(http.Header, 8) // as net/http gives each response
		w.n = 0
		srv.ServeHTTP(w, r)
		if w.n != len(benchBody) {
			b.Fatalf("wrote %d bytes", w.n)
		}
	}
	b.StopTimer()
	gc1 := readGC()
	// This process's CPU time per hit: the work, which a loaded machine
	// inflates far less than ns/op (time waiting for a core counts there).
	b.ReportMetric(float64(testutil.ProcessCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	// What collecting the garbage cost: the GC's CPU time (the runtime's
	// estimate, without the mark work done on otherwise idle CPUs) as a
	// share of the rest, and collections per million requests (spark_gc
	// paces them in the repo config).
	if cpu := (gc1.total - gc1.idle) - (gc0.total - gc0.idle); cpu > 0 {
		b.ReportMetric(100*((gc1.gc-gc1.gcIdle)-(gc0.gc-gc0.gcIdle))/cpu, "gc-cpu-%")
	}
	b.ReportMetric(float64(gc1.cycles-gc0.cycles)*1e6/float64(b.N), "gcs/Mop")
}

// gcSample is the runtime's GC figures: CPU seconds in the GC (gcIdle of
// them on otherwise idle CPUs), in total and idle, collections.
type gcSample struct {
	gc, gcIdle, total, idle float64
	cycles                  uint64
}

func readGC() gcSample {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return gcSample{gc: s[0].Value.Float64(), gcIdle: s[1].Value.Float64(), total: s[2].Value.Float64(),
		idle: s[3].Value.Float64(), cycles: s[4].Value.Uint64()}
}
