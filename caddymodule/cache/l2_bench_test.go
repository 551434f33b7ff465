package cache

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/tiered"
)

// l2BenchKeys is bench-edge's key set: 10,000 1 KB responses.
const l2BenchKeys = 10000

// newRedisBenchCache builds a Cache over an L1 of capacity bytes and the
// Redis at addr.
func newRedisBenchCache(tb testing.TB, capacity int64, addr string) *Cache {
	tb.Helper()
	opts := tiered.DefaultOptions()
	opts.Capacity, opts.MaxEntrySize = capacity, 16<<10
	ro := tiered.DefaultRedisOptions(addr)
	opts.Redis = &ro
	store, err := tiered.New(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return newCache(store, newMetrics(store, "bench"), zap.NewNop(), Policy{}, nil, []string{"zstd", "br", "gzip"}, 16<<10)
}

// l2BenchRequests are GETs of the benchmark's keys, with vary set: the
// origin's responses carry Vary: Accept-Encoding (two records per key, as
// behind encode) or not (one, as bench-edge's origin).
func l2BenchRequests() []*http.Request {
	rs := make([]*http.Request, l2BenchKeys)
	for i := range rs {
		rs[i] = benchRequest("/item/" + strconv.Itoa(i))
	}
	return rs
}

// l2BenchOrigin serves the 1 KB body for five minutes, with Vary:
// Accept-Encoding when vary is set.
func l2BenchOrigin(vary bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		if vary {
			h.Set("Vary", "Accept-Encoding")
		}
		h.Set("Content-Length", strconv.Itoa(len(benchBody)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(benchBody)
		return err
	}
}

// BenchmarkL2Hit compares, in one run, hits served from L1 (bench-edge's
// L1 row: an L1 large enough for every key, hot copies) with hits served
// from Redis (its L2 row: an L1 of 1 MiB for 10,000 1 KB keys, so most
// requests are L1 misses answered by L2 and promoted), both through the
// handler with 64 concurrent requests (bench-edge's connections), keys
// drawn at random. l2reads/op counts the records L2 answered per hit.
// The ratio of the two ns/op is the handler's part of bench-edge's
// L2/L1 ratio (Caddy, net/http and the sockets come on top of both).
//
// The machine is shared, so ns/op moves with its load; cpu-us/op (this
// process's CPU time per hit) and redis-cpu-us/op (the CPU time of the
// benchmark's own redis-server per hit) count work, not waiting, and hold
// better: their sum is what a hit costs the cores.
func BenchmarkL2Hit(b *testing.B) {
	for _, vary := range []bool{false, true} {
		name := "novary"
		if vary {
			name = "vary"
		}
		b.Run(name, func(b *testing.B) { benchmarkL2Hit(b, vary) })
	}
}

func benchmarkL2Hit(b *testing.B, vary bool) {
	srv := testredis.Start(b)
	filler := newRedisBenchCache(b, 64<<20, srv.Addr())
	rs := l2BenchRequests()
	origin := l2BenchOrigin(vary)
	// Fill L1 and Redis, 16 at a time.
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(rs); i += 16 {
				if err := filler.ServeHTTP(httptest.NewRecorder(), rs[i], origin); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := handlerFunc(func(http.ResponseWriter, *http.Request) error { return errNextCalled })
	run := func(b *testing.B, c *Cache) {
		// One pass first, so that the L1 run's keys have hot copies as in
		// bench-edge.
		for _, r := range rs {
			if err := c.ServeHTTP(&benchWriter{h: make(http.Header)}, r, next); err != nil {
				b.Fatal(err)
			}
		}
		before := c.store.Stats()
		cpu0, rcpu0 := testutil.ProcessCPU(b), redisCPU(b, srv)
		b.ReportAllocs()
		b.SetParallelism(32) // 64 in flight on 2 cores, as bench-edge's 64 connections
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := &benchWriter{h: make(http.Header)}
			rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for pb.Next() {
				w.reset()
				if err := c.ServeHTTP(w, rs[rng.IntN(len(rs))], next); err != nil {
					b.Error(err)
					return
				}
				if w.n != len(benchBody) {
					b.Errorf("wrote %d bytes", w.n)
					return
				}
			}
		})
		b.StopTimer()
		cpu, rcpu := testutil.ProcessCPU(b)-cpu0, redisCPU(b, srv)-rcpu0
		after := c.store.Stats()
		b.ReportMetric(float64(after.L2Hits-before.L2Hits)/float64(b.N), "l2reads/op")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
		b.ReportMetric(float64(rcpu.Microseconds())/float64(b.N), "redis-cpu-us/op")
	}
	b.Run("l1", func(b *testing.B) { run(b, filler) })
	b.Run("l2", func(b *testing.B) { run(b, newRedisBenchCache(b, 1<<20, srv.Addr())) })
}

// redisCPU is the CPU time srv has used.
func redisCPU(tb testing.TB, srv *testredis.Server) time.Duration {
	d, err := srv.CPUTime()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
