package cache

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/testredis"
)

// testRedis returns the machine's Redis; ownRedis is a server of the
// test's own that it can kill and restart.
var testRedis = func(t *testing.T) string { return testredis.Shared(t) }

func startOwnRedis(t *testing.T) *testredis.Server { return testredis.Start(t) }

// twoEdges loads one Caddy with two edge sites, each its own spark_cache
// (own L1, own node on the purge channel) sharing the Redis at redisAddr
// with the given read and write timeout.
func twoEdges(t *testing.T, redisAddr, timeout string) (a, b *edge) {
	t.Helper()
	prefix := fmt.Sprintf("sparkit:%d:", time.Now().UnixNano())
	block := func(name string) string {
		return `spark_cache {
		name ` + name + `
		capacity 16MiB
		max_entry_size 1MiB
		redis ` + redisAddr + ` {
			key_prefix ` + prefix + `
			read_timeout ` + timeout + `
			write_timeout ` + timeout + `
		}
	}`
	}
	o, ports := launch(t, 3, func(p []int, originAddr string) string {
		return caddytest.GlobalOptions(p[0], "") + siteFor(p[1], originAddr, block("edge-a")) + siteFor(p[2], originAddr, block("edge-b"))
	})
	sameHost := func(rt http.RoundTripper) http.RoundTripper { return sameHost{rt} }
	return newEdge(t, o, ports[0], ports[1], sameHost), newEdge(t, o, ports[0], ports[2], sameHost)
}

func getStatus(t *testing.T, e *edge, path string) (int, string, string) {
	t.Helper()
	res, err := e.client.Get(e.site + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Cache-Status"), string(body)
}

// sameHost sends every request with the Host the edges share in production
// (keys include the host; the test's edges listen on different ports).
type sameHost struct{ rt http.RoundTripper }

func (s sameHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = "api.spark.test"
	return s.rt.RoundTrip(r)
}

func TestIntegrationL2SharedBetweenEdges(t *testing.T) {
	// Generous Redis timeouts: this test checks sharing, not latency, and
	// on a loaded machine a slow L2 write or read must not become a miss.
	a, b := twoEdges(t, testRedis(t), "2s")
	o := a.origin
	o.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Spark-Purge", "user:7")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Cache-Tags", "user:7")
		_, _ = io.WriteString(w, "profile 7")
	})
	if _, cs, _ := getStatus(t, a, "/users/7"); !strings.Contains(cs, "stored") {
		t.Fatalf("edge A first GET Cache-Status = %q, want stored", cs)
	}
	_, cs, body := getStatus(t, b, "/users/7")
	if !strings.Contains(cs, "hit") || !strings.Contains(cs, "detail=l2") || body != "profile 7" {
		t.Fatalf("edge B GET = %q %q, want an L2 hit", cs, body)
	}
	if _, cs, _ = getStatus(t, b, "/users/7"); !strings.Contains(cs, "detail=l1") {
		t.Fatalf("edge B second GET Cache-Status = %q, want an L1 hit", cs)
	}
	if n := o.hits("GET", "/users/7"); n != 1 {
		t.Fatalf("origin saw %d GETs, want 1", n)
	}

	// A write through edge A purges user:7 on edge B too, within
	// milliseconds on an idle machine (logged below); the bound is for
	// liveness only, loose enough for a loaded CI machine.
	res, err := a.client.Post(a.site+"/users/7/like", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	start := time.Now()
	for {
		_, cs, _ := getStatus(t, b, "/users/7")
		if strings.Contains(cs, "fwd=miss") {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("edge B still serves user:7 10 s after the purge on A (Cache-Status %q)", cs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("purge reached edge B in %s", time.Since(start))
}

// Redis dies in the middle of a load: not one request fails, and the edges
// go back to sharing once it returns.
func TestIntegrationRedisKilledUnderLoad(t *testing.T) {
	rs := startOwnRedis(t)
	// Short timeouts: operations on a killed Redis wait them out until
	// the breaker opens (with 2 s the requests during the outage crawl).
	a, b := twoEdges(t, rs.Addr(), "100ms")
	a.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = io.WriteString(w, "item "+r.URL.Path)
	})
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			e := a
			if w%2 == 1 {
				e = b
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/items/%d", (w*7919+i)%200)
				res, err := e.client.Get(e.site + path)
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || string(body) != "item "+path {
					failures.Add(1)
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	before := total.Load()
	rs.Stop()
	time.Sleep(700 * time.Millisecond)
	during := total.Load() - before
	rs.Start()
	time.Sleep(1500 * time.Millisecond)
	t.Logf("requests: %d in 300 ms before the kill, %d in the 700 ms without Redis, %d in 1.5 s after", before, during, total.Load()-before-during)
	close(stop)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed while Redis was killed and restarted", f, total.Load())
	}
	t.Logf("%d requests, 0 failed", total.Load())
	// Sharing resumes: a store on A becomes an L2 hit on B. (The breaker
	// probes with backoff up to 5 s; the bound leaves room for a loaded
	// machine's slow Redis restart.)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		path := fmt.Sprintf("/after/%d", i)
		getStatus(t, a, path)
		if _, cs, _ := getStatus(t, b, path); strings.Contains(cs, "detail=l2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("edges did not share through Redis again after it came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
