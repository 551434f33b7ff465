package loadtest

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// record adds a sample to s, as a Recorder's shards and timeline do
// between them.
func record(s *Stats, x Sample) {
	s.addEndpoint(x)
	s.addTimeline(x)
}

func TestParseCacheStatus(t *testing.T) {
	for in, want := range map[string]CacheResult{
		"":                                 CacheNone,
		"spark; hit; ttl=117; detail=l1":   CacheHit,
		"spark; hit; ttl=3; detail=l2":     CacheHit,
		"spark; fwd=miss; stored":          CacheMiss,
		"spark; fwd=uri-miss; stored":      CacheMiss,
		"spark; fwd=miss; detail=no-store": CacheUncacheable,
		"spark; fwd=bypass":                CacheBypass,
		"spark; fwd=bypass; detail=range":  CacheBypass,
		"spark; fwd=stale; fwd-status=304; detail=l1-revalidated": CacheStale,
		"OtherCache; hit, spark; fwd=miss; stored":                CacheMiss,
		"ExampleCache; fwd=uri-miss; stored, Other; hit":          CacheHit, // no spark member: the last one
	} {
		if got := ParseCacheStatus(in); got != want {
			t.Errorf("ParseCacheStatus(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestCacheHitRatio(t *testing.T) {
	c := CacheCounts{Hit: 9, Miss: 1, Uncacheable: 100, Bypass: 50}
	if r, ok := c.HitRatio(); !ok || r != 0.9 {
		t.Errorf("HitRatio = %g, %v; want 0.9 (uncacheable and bypass excluded)", r, ok)
	}
	if _, ok := (CacheCounts{None: 5, Bypass: 3}).HitRatio(); ok {
		t.Error("HitRatio with no lookups reported a ratio")
	}
}

func randomSamples(n int, start time.Time, seed uint64) []Sample {
	rng := rand.New(rand.NewPCG(seed, seed))
	eps := []string{"a", "b", "c"}
	kinds := []string{"", "", "", "", ErrKind5xx, ErrKindTimeout}
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{
			Endpoint: eps[rng.IntN(len(eps))], Method: "GET",
			Intended: start.Add(time.Duration(rng.Int64N(int64(5 * time.Second)))),
			Latency:  time.Duration(1+rng.ExpFloat64()*5000) * time.Microsecond,
			Status:   200, ErrKind: kinds[rng.IntN(len(kinds))],
			Cache: CacheResult(rng.IntN(6)), BytesIn: rng.Int64N(2000), BytesOut: rng.Int64N(100),
			Skipped: rng.IntN(50) == 0,
		}
	}
	return out
}

// Merging per-shard statistics gives exactly what recording everything in
// one place gives: counts, histograms and timeline.
func TestStatsMergeEqualsSingle(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	samples := randomSamples(20000, start, 7)
	one := NewStats(start)
	parts := []*Stats{NewStats(start), NewStats(start), NewStats(start)}
	for i, s := range samples {
		record(one, s)
		record(parts[i%3], s)
	}
	merged := NewStats(start)
	for _, p := range parts {
		merged.Merge(p)
	}
	compareStats(t, one, merged)
}

func compareStats(t *testing.T, want, got *Stats) {
	t.Helper()
	if len(want.Endpoints) != len(got.Endpoints) {
		t.Fatalf("endpoints %d vs %d", len(want.Endpoints), len(got.Endpoints))
	}
	for name, w := range want.Endpoints {
		g := got.Endpoints[name]
		if g == nil {
			t.Fatalf("endpoint %s missing after merge", name)
		}
		if w.Requests != g.Requests || w.Errors != g.Errors || w.Skipped != g.Skipped || w.Cache != g.Cache ||
			w.BytesIn != g.BytesIn || w.BytesOut != g.BytesOut {
			t.Errorf("%s: counts differ: %+v vs %+v", name, w, g)
		}
		if !w.Latency.Equals(g.Latency) {
			t.Errorf("%s: histograms differ", name)
		}
		for _, q := range []float64{50, 95, 99, 99.9, 100} {
			if a, b := w.Latency.ValueAtQuantile(q), g.Latency.ValueAtQuantile(q); a != b {
				t.Errorf("%s p%g: %d vs %d", name, q, a, b)
			}
		}
		for k, v := range w.ErrorKinds {
			if g.ErrorKinds[k] != v {
				t.Errorf("%s error kind %s: %d vs %d", name, k, v, g.ErrorKinds[k])
			}
		}
	}
	if len(want.Timeline) != len(got.Timeline) {
		t.Fatalf("timeline %d vs %d seconds", len(want.Timeline), len(got.Timeline))
	}
	for i := range want.Timeline {
		w, g := want.Timeline[i], got.Timeline[i]
		if w.Requests != g.Requests || w.Errors != g.Errors || w.Cache != g.Cache || !w.Latency.Equals(g.Latency) {
			t.Errorf("second %d differs", i)
		}
	}
	wt, gt := want.Total(), got.Total()
	if wt.Requests != gt.Requests || !wt.Latency.Equals(gt.Latency) {
		t.Errorf("totals differ")
	}
}

// The recorder is safe for concurrent use and its snapshot holds every sample.
func TestRecorderConcurrent(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	const workers = 8
	per := make([][]Sample, workers)
	want := NewStats(start)
	for w := range per {
		per[w] = randomSamples(3000, start, uint64(w+1))
		for _, s := range per[w] {
			record(want, s)
		}
	}
	rec := NewRecorder(start, 4)
	var wg sync.WaitGroup
	for w := range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range per[w] {
				rec.Record(w*7+i, s)
				if i%500 == 0 {
					_ = rec.SecondP95(1)
					_ = rec.Live()
				}
			}
		}()
	}
	wg.Wait()
	compareStats(t, want, rec.Snapshot())
	live := rec.Live()
	tot := want.Total()
	if live.Requests != tot.Requests || live.Errors != tot.Errors || live.Hits != tot.Cache.Hit || live.Lookups != tot.Cache.Lookups() {
		t.Errorf("live counters %+v, want requests %d errors %d hits %d lookups %d", live, tot.Requests, tot.Errors, tot.Cache.Hit, tot.Cache.Lookups())
	}
}

func TestStatsDroppedAndClamping(t *testing.T) {
	start := time.Now()
	s := NewStats(start)
	record(s, Sample{Endpoint: "a", Intended: start, ErrKind: ErrKindDropped})
	record(s, Sample{Endpoint: "a", Intended: start, Latency: 10 * time.Minute}) // beyond the histogram: clamped
	record(s, Sample{Endpoint: "a", Intended: start.Add(-time.Second), Latency: 0})
	e := s.Endpoints["a"]
	if e.Requests != 3 || e.Errors != 1 || e.ErrorKinds[ErrKindDropped] != 1 {
		t.Errorf("counts %+v", e)
	}
	if e.Latency.TotalCount() != 2 || e.Latency.Max() < histMax*99/100 {
		t.Errorf("histogram count %d max %d", e.Latency.TotalCount(), e.Latency.Max())
	}
}
