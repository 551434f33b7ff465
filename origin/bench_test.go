package origin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/postgis"
)

// Benchmarks against a seeded PostGIS database (spark origin seed), through
// the real HTTP handler, with 32 concurrent clients (SPARK_BENCH_CLIENTS). They need
// SPARK_BENCH_DATABASE_URL and fail without it. Example:
//
//	spark origin seed --database-url "$URL" --users 1000000
//	SPARK_BENCH_DATABASE_URL="$URL" go test -run '^$' -bench . -benchtime 20000x ./origin/
//
// Each reports p50_ms, p95_ms, p99_ms and req/s. SPARK_BENCH_CPUPROFILE and
// SPARK_BENCH_MEMPROFILE profile the measured load alone (see profileLoad).

// benchClients is the number of concurrent clients: SPARK_BENCH_CLIENTS, default 32.
func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("SPARK_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 32
}

type benchEnv struct {
	srv    *httptest.Server
	st     *postgis.Store
	users  []int64
	convs  [][3]int64 // conversation, user_a, user_b
	tokens map[int64]string
}

// openBench serves the bench database; configure, if given, adjusts the
// server's options.
func openBench(b *testing.B, cellCache bool, configure ...func(*origin.ServerOptions)) *benchEnv {
	b.Helper()
	url := os.Getenv("SPARK_BENCH_DATABASE_URL")
	if url == "" {
		b.Fatal("SPARK_BENCH_DATABASE_URL is not set: seed a database with `spark origin seed` and point it there")
	}
	ctx := context.Background()
	cc := postgis.CellCacheConfig{Enabled: cellCache} // the defaults spark origin uses
	if n, err := strconv.ParseInt(os.Getenv("SPARK_BENCH_CELL_CACHE_BYTES"), 10, 64); err == nil {
		cc.MaxBytes = n
	}
	st, err := postgis.Open(ctx, postgis.Config{URL: url, CellCache: cc})
	if err != nil {
		b.Fatalf("open bench database: %v", err)
	}
	b.Cleanup(st.Close)
	auth, _ := origin.NewAuthenticator(testSecret, nil, nil)
	o := origin.ServerOptions{Store: st, StoreName: "postgis", Auth: auth, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range configure {
		c(&o)
	}
	srv, err := origin.NewServer(o)
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{srv: httptest.NewServer(srv), st: st, tokens: map[int64]string{}}
	b.Cleanup(env.srv.Close)
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatalf("open bench database: %v", err)
	}
	b.Cleanup(db.Close)
	rows, err := db.Query(ctx, `SELECT id FROM users WHERE is_active AND id % 97 = 0 ORDER BY id LIMIT 4000`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		env.users = append(env.users, id)
	}
	rows, err = db.Query(ctx, `SELECT c.id, c.user_a, c.user_b FROM conversations c
		JOIN matches m ON m.id = c.match_id AND m.unmatched_at IS NULL ORDER BY c.id LIMIT 4000`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var c [3]int64
		if err := rows.Scan(&c[0], &c[1], &c[2]); err != nil {
			b.Fatal(err)
		}
		env.convs = append(env.convs, c)
	}
	if len(env.users) == 0 || len(env.convs) == 0 {
		b.Fatal("bench database is empty: run spark origin seed first")
	}
	for _, id := range env.users {
		env.tokens[id] = token(b, id)
	}
	for _, c := range env.convs {
		for _, id := range c[1:] {
			if _, ok := env.tokens[id]; !ok {
				env.tokens[id] = token(b, id)
			}
		}
	}
	return env
}

// load runs n requests from benchClients workers and reports latency
// percentiles and throughput.
func (e *benchEnv) load(b *testing.B, n int, mk func(r *rand.Rand, i int) *http.Request, okStatus ...int) {
	b.Helper()
	e.loadWith(b, benchClients(), n, mk, okStatus...)
}

// loadWith runs n requests from clients workers and reports latency
// percentiles, throughput and the CPU time of this process (the client and
// the origin, not PostgreSQL) per b.N.
func (e *benchEnv) loadWith(b *testing.B, clients, n int, mk func(r *rand.Rand, i int) *http.Request, okStatus ...int) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients * 2}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stopProfile := profileLoad(b)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req := mk(r, i)
				t0 := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				lat[i] = time.Since(t0)
				ok := err == nil
				if ok {
					ok = slices.Contains(okStatus, res.StatusCode)
					if !ok {
						err = fmt.Errorf("status %d for %s %s", res.StatusCode, req.Method, req.URL.Path)
					}
				}
				if !ok {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	stopProfile()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed, first: %v", f, n, firstErr.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(float64(n-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.95), "p95_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_us/op")
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileLoad profiles the measured load alone (not the warm-up): a CPU
// profile into SPARK_BENCH_CPUPROFILE, and heap profiles into
// SPARK_BENCH_MEMPROFILE (at the end) and SPARK_BENCH_MEMPROFILE.base (at the
// start; compare with go tool pprof -base). It returns the stop.
func profileLoad(b *testing.B) func() {
	writeHeap := func(path string) {
		f, err := os.Create(path)
		if err != nil {
			b.Fatalf("heap profile: %v", err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Fatalf("heap profile: %v", err)
		}
	}
	mem := os.Getenv("SPARK_BENCH_MEMPROFILE")
	if mem != "" {
		writeHeap(mem + ".base")
	}
	stop := func() {
		if mem != "" {
			writeHeap(mem)
		}
	}
	path := os.Getenv("SPARK_BENCH_CPUPROFILE")
	if path == "" {
		return stop
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("cpu profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatalf("cpu profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		stop()
	}
}

func (e *benchEnv) req(method, path string, user int64, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func benchSuggestions(b *testing.B, cellCache bool) { benchSuggestionsWarm(b, cellCache, false) }

// benchSuggestionsWarm is benchSuggestions; with warm, every bench user asks
// once before the measured load (untimed), so the caches start full.
func benchSuggestionsWarm(b *testing.B, cellCache, warm bool) {
	e := openBench(b, cellCache)
	if warm {
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < len(e.users); i = int(next.Add(1)) - 1 {
					res, err := http.DefaultClient.Do(e.req("GET", "/api/matches/suggestions?limit=50", e.users[i], ""))
					if err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				}
			}()
		}
		wg.Wait()
		if cc := e.st.CellCache(); cc != nil {
			cc.ResetStats()
		}
	}
	e.load(b, b.N, func(r *rand.Rand, i int) *http.Request {
		u := e.users[r.IntN(len(e.users))]
		return e.req("GET", "/api/matches/suggestions?limit=50", u, "")
	}, 200, 409)
	if cc := e.st.CellCache(); cc != nil {
		hits, misses := cc.Stats()
		b.ReportMetric(float64(misses)/float64(b.N), "cell_misses/op")
		b.ReportMetric(float64(hits)/float64(b.N), "cell_hits/op")
		n, bytes := cc.Decoded()
		b.ReportMetric(float64(n), "decoded_cells")
		b.ReportMetric(float64(bytes)/(1<<20), "decoded_MiB")
	}
}

// BenchmarkSuggestionsExactSQL: nearest-first KNN query per request.
func BenchmarkSuggestionsExactSQL(b *testing.B) { benchSuggestions(b, false) }

// BenchmarkSuggestionsCellCache: suggestions through the cell-candidate cache.
func BenchmarkSuggestionsCellCache(b *testing.B) { benchSuggestions(b, true) }

// BenchmarkSuggestionsCellCacheWarm: the cell cache after every bench user
// asked once (cells and user states loaded), i.e. the steady state.
func BenchmarkSuggestionsCellCacheWarm(b *testing.B) { benchSuggestionsWarm(b, true, true) }

// BenchmarkSuggestionsExactSQLWarm: the exact query after the same warm-up
// (same database buffer state as the warm cell-cache run).
func BenchmarkSuggestionsExactSQLWarm(b *testing.B) { benchSuggestionsWarm(b, false, true) }

// BenchmarkLocationUpdate: PUT /api/users/me/location, small moves.
func BenchmarkLocationUpdate(b *testing.B) {
	e := openBench(b, true)
	e.load(b, b.N, func(r *rand.Rand, i int) *http.Request {
		u := e.users[r.IntN(len(e.users))]
		cs := origin.SeedCities()
		c := cs[r.IntN(len(cs))]
		return e.req("PUT", "/api/users/me/location", u, fmt.Sprintf(`{"lat":%.6f,"lng":%.6f}`, c.Lat+r.Float64()*0.1, c.Lng+r.Float64()*0.1))
	}, 200)
}

// BenchmarkMessageSend: POST /api/conversations/{id}/messages from
// SPARK_BENCH_CLIENTS concurrent senders, each to a random live
// conversation, with batching off (each send its own transaction) and on:
// the defaults (64 per batch, a send waiting up to 2 ms for company), and
// no waiting (a batch is what queued while the previous one committed).
// Every send appends two events and, with a bus, publishes them.
func BenchmarkMessageSend(b *testing.B) {
	for _, tc := range []struct {
		name string
		o    origin.MessageBatchOptions
	}{
		{"unbatched", origin.MessageBatchOptions{Size: 1}},
		{"batched", origin.DefaultMessageBatchOptions()},
		{"batched-nowait", origin.MessageBatchOptions{Size: origin.DefaultMessageBatchSize}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := openBench(b, false, func(o *origin.ServerOptions) { o.MessageBatch = &tc.o })
			run := time.Now().UnixNano()
			e.load(b, b.N, func(r *rand.Rand, i int) *http.Request {
				c := e.convs[r.IntN(len(e.convs))]
				return e.req("POST", fmt.Sprintf("/api/conversations/%d/messages", c[0]), c[1+r.IntN(2)],
					fmt.Sprintf(`{"body":"bench message %d","client_msg_id":"bench-%d-%d"}`, i, run, i))
			}, 201)
		})
	}
}

// BenchmarkMessageSendBatch: the same sends as BenchmarkMessageSend's
// batched, one per request, against POST /api/messages/batch with 16 per
// request (as the realtime edge coalesces them), the same number of
// messages in flight (benchClients). An op is one message.
func BenchmarkMessageSendBatch(b *testing.B) {
	for _, per := range []int{1, 16} {
		b.Run(fmt.Sprintf("per-request-%d", per), func(b *testing.B) {
			e := openBench(b, false)
			run := time.Now().UnixNano()
			if per == 1 {
				e.load(b, b.N, func(r *rand.Rand, i int) *http.Request {
					c := e.convs[r.IntN(len(e.convs))]
					return e.req("POST", fmt.Sprintf("/api/conversations/%d/messages", c[0]), c[1+r.IntN(2)],
						fmt.Sprintf(`{"body":"bench message %d","client_msg_id":"bench-%d-%d"}`, i, run, i))
				}, 201)
				return
			}
			e.loadWith(b, max(1, benchClients()/per), max(1, b.N/per), func(r *rand.Rand, i int) *http.Request {
				var items []string
				for k := range per {
					c := e.convs[r.IntN(len(e.convs))]
					items = append(items, fmt.Sprintf(`{"token":%q,"conversation_id":%d,"body":"bench message %d","client_msg_id":"bench-%d-%d-%d"}`,
						e.tokens[c[1+r.IntN(2)]], c[0], i, run, i, k))
				}
				req := e.req("POST", "/api/messages/batch", 0, `{"messages":[`+strings.Join(items, ",")+`]}`)
				req.Header.Del("Authorization")
				return req
			}, 200)
		})
	}
}

// BenchmarkHistoryPage: GET /api/conversations/{id}/messages?limit=50.
func BenchmarkHistoryPage(b *testing.B) {
	e := openBench(b, false)
	e.load(b, b.N, func(r *rand.Rand, i int) *http.Request {
		c := e.convs[r.IntN(len(e.convs))]
		return e.req("GET", fmt.Sprintf("/api/conversations/%d/messages?limit=50", c[0]), c[1], "")
	}, 200)
}
