package loadtest

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 2 minutes.
const (
	histMin     = 1
	histMax     = int64(2 * time.Minute / time.Microsecond)
	histSigFigs = 3
	// The per-second timeline histograms are coarser: they are many.
	timelineSigFigs = 2
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigFigs) }

func newTimelineHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, timelineSigFigs)
}

// CacheResult is what a response's Cache-Status said about the edge cache.
type CacheResult uint8

// Cache results, from the RFC 9211 Cache-Status header of the edge.
const (
	// CacheNone: no Cache-Status (an origin, or a response the cache did not handle).
	CacheNone CacheResult = iota
	// CacheHit: served from the cache ("hit").
	CacheHit
	// CacheMiss: forwarded and stored ("fwd=miss; stored").
	CacheMiss
	// CacheStale: forwarded to revalidate a stored entry ("fwd=stale").
	CacheStale
	// CacheUncacheable: forwarded and not stored ("fwd=miss; detail=...").
	CacheUncacheable
	// CacheBypass: the cache stepped aside ("fwd=bypass", unsafe methods).
	CacheBypass
)

// ParseCacheStatus classifies a Cache-Status header value. With several
// caches listed it reads the "spark" member, else the last one.
func ParseCacheStatus(v string) CacheResult {
	if v == "" {
		return CacheNone
	}
	member := ""
	for _, m := range strings.Split(v, ",") {
		m = strings.TrimSpace(m)
		member = m
		if strings.HasPrefix(m, "spark;") || m == "spark" {
			break
		}
	}
	params := strings.Split(member, ";")
	var fwd string
	hit, stored := false, false
	for _, p := range params[1:] {
		p = strings.TrimSpace(p)
		k, val, _ := strings.Cut(p, "=")
		switch strings.ToLower(k) {
		case "hit":
			hit = true
		case "fwd":
			fwd = strings.ToLower(strings.Trim(val, `"`))
		case "stored":
			stored = true
		}
	}
	switch {
	case hit:
		return CacheHit
	case fwd == "bypass" || fwd == "method" || fwd == "request":
		return CacheBypass
	case fwd == "stale":
		return CacheStale
	case fwd != "" && stored:
		return CacheMiss
	case fwd != "":
		return CacheUncacheable
	}
	return CacheNone
}

// CacheCounts counts responses by CacheResult.
type CacheCounts struct {
	Hit         int64 `json:"hit"`         // served from the cache
	Miss        int64 `json:"miss"`        // forwarded and stored
	Stale       int64 `json:"stale"`       // forwarded to revalidate
	Uncacheable int64 `json:"uncacheable"` // forwarded, not storable
	Bypass      int64 `json:"bypass"`      // cache stepped aside (writes)
	None        int64 `json:"none"`        // no Cache-Status
}

func (c *CacheCounts) add(r CacheResult) {
	switch r {
	case CacheHit:
		c.Hit++
	case CacheMiss:
		c.Miss++
	case CacheStale:
		c.Stale++
	case CacheUncacheable:
		c.Uncacheable++
	case CacheBypass:
		c.Bypass++
	default:
		c.None++
	}
}

func (c *CacheCounts) merge(o CacheCounts) {
	c.Hit += o.Hit
	c.Miss += o.Miss
	c.Stale += o.Stale
	c.Uncacheable += o.Uncacheable
	c.Bypass += o.Bypass
	c.None += o.None
}

// Lookups is the number of responses to cacheable requests: hits, stored
// misses and revalidations.
func (c CacheCounts) Lookups() int64 { return c.Hit + c.Miss + c.Stale }

// HitRatio is hits over lookups; ok is false when nothing was cacheable or no
// Cache-Status was seen.
func (c CacheCounts) HitRatio() (ratio float64, ok bool) {
	if n := c.Lookups(); n > 0 {
		return float64(c.Hit) / float64(n), true
	}
	return 0, false
}

// Error kinds.
const (
	ErrKind4xx        = "http_4xx"
	ErrKind5xx        = "http_5xx"
	ErrKindUnexpected = "unexpected_status"
	ErrKindTimeout    = "timeout"
	ErrKindConnection = "connection"
	ErrKindDropped    = "dropped"
	ErrKindOther      = "other"
)

// Sample is one finished (or failed, or skipped) request.
type Sample struct {
	// Endpoint names the scenario endpoint.
	Endpoint string
	// Method is the HTTP method.
	Method string
	// Intended is when the request should have been sent; latency counts
	// from here.
	Intended time.Time
	// Latency is from Intended to the last response byte (or the failure).
	Latency time.Duration
	// Status is the HTTP status, 0 when none arrived.
	Status int
	// ErrKind is empty on success, else one of the ErrKind constants.
	ErrKind string
	// Cache is what Cache-Status said.
	Cache CacheResult
	// BytesIn and BytesOut are the body bytes received and sent.
	BytesIn, BytesOut int64
	// Skipped marks a step with nothing to send (ErrSkip); nothing else is set.
	Skipped bool
}

// EndpointStats aggregates the samples of one endpoint.
type EndpointStats struct {
	// Name is the endpoint's name.
	Name string
	// Method is its HTTP method.
	Method string
	// Latency holds the latencies in microseconds.
	Latency *hdrhistogram.Histogram
	// Requests counts the requests sent (including failed ones).
	Requests int64
	// Errors counts the failed requests.
	Errors int64
	// Skipped counts steps that had nothing to send.
	Skipped int64
	// Statuses counts responses by HTTP status.
	Statuses map[int]int64
	// ErrorKinds counts failures by kind.
	ErrorKinds map[string]int64
	// Cache counts responses by Cache-Status.
	Cache CacheCounts
	// BytesIn and BytesOut sum body bytes.
	BytesIn, BytesOut int64
}

func newEndpointStats(name, method string) *EndpointStats {
	return &EndpointStats{Name: name, Method: method, Latency: newHist(), Statuses: map[int]int64{}, ErrorKinds: map[string]int64{}}
}

func (e *EndpointStats) merge(o *EndpointStats) {
	e.Latency.Merge(o.Latency)
	e.Requests += o.Requests
	e.Errors += o.Errors
	e.Skipped += o.Skipped
	for k, v := range o.Statuses {
		e.Statuses[k] += v
	}
	for k, v := range o.ErrorKinds {
		e.ErrorKinds[k] += v
	}
	e.Cache.merge(o.Cache)
	e.BytesIn += o.BytesIn
	e.BytesOut += o.BytesOut
}

// Bucket is one second of the run.
type Bucket struct {
	// Requests and Errors count completions in the second.
	Requests, Errors int64
	// Cache counts their Cache-Status.
	Cache CacheCounts
	// Latency holds their latencies (microseconds, 2 significant figures).
	Latency *hdrhistogram.Histogram
}

// Stats aggregates samples: per endpoint, overall, and per second.
type Stats struct {
	// Start is the run's time zero for the timeline.
	Start time.Time
	// Endpoints by name.
	Endpoints map[string]*EndpointStats
	// Timeline has one bucket per second since Start, by completion time.
	Timeline []*Bucket
}

// NewStats returns empty statistics starting at start.
func NewStats(start time.Time) *Stats {
	return &Stats{Start: start, Endpoints: map[string]*EndpointStats{}}
}

func latencyValue(d time.Duration) int64 {
	return max(histMin, min(d.Microseconds(), histMax))
}

// addEndpoint records a sample in its endpoint's statistics.
func (s *Stats) addEndpoint(x Sample) {
	e := s.Endpoints[x.Endpoint]
	if e == nil {
		e = newEndpointStats(x.Endpoint, x.Method)
		s.Endpoints[x.Endpoint] = e
	}
	if x.Skipped {
		e.Skipped++
		return
	}
	e.Requests++
	if x.ErrKind != "" {
		e.Errors++
		e.ErrorKinds[x.ErrKind]++
	}
	if x.ErrKind == ErrKindDropped {
		return // never sent: no latency, status or bytes
	}
	_ = e.Latency.RecordValue(latencyValue(x.Latency)) // in range by construction
	if x.Status != 0 {
		e.Statuses[x.Status]++
	}
	e.Cache.add(x.Cache)
	e.BytesIn += x.BytesIn
	e.BytesOut += x.BytesOut
}

// addTimeline records a sample in the second it completed.
func (s *Stats) addTimeline(x Sample) {
	if x.Skipped || x.ErrKind == ErrKindDropped {
		return
	}
	sec := max(0, int(x.Intended.Add(x.Latency).Sub(s.Start)/time.Second))
	b := s.bucket(sec)
	b.Requests++
	if x.ErrKind != "" {
		b.Errors++
	}
	b.Cache.add(x.Cache)
	_ = b.Latency.RecordValue(latencyValue(x.Latency))
}

func (s *Stats) bucket(sec int) *Bucket {
	for len(s.Timeline) <= sec {
		s.Timeline = append(s.Timeline, &Bucket{Latency: newTimelineHist()})
	}
	return s.Timeline[sec]
}

// Merge adds o's counts and histograms to s. Timelines are aligned on the
// seconds since each one's Start, which must be the same run's.
func (s *Stats) Merge(o *Stats) {
	for name, oe := range o.Endpoints {
		e := s.Endpoints[name]
		if e == nil {
			e = newEndpointStats(oe.Name, oe.Method)
			s.Endpoints[name] = e
		}
		e.merge(oe)
	}
	for i, ob := range o.Timeline {
		b := s.bucket(i)
		b.Requests += ob.Requests
		b.Errors += ob.Errors
		b.Cache.merge(ob.Cache)
		b.Latency.Merge(ob.Latency)
	}
}

// Total merges every endpoint into one.
func (s *Stats) Total() *EndpointStats {
	t := newEndpointStats("total", "")
	for _, name := range s.EndpointNames() {
		t.merge(s.Endpoints[name])
	}
	return t
}

// EndpointNames returns the endpoint names, sorted.
func (s *Stats) EndpointNames() []string {
	out := make([]string, 0, len(s.Endpoints))
	for n := range s.Endpoints {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Recorder collects samples from many goroutines: per-endpoint statistics in
// shards (less lock contention), the per-second timeline once (it is the
// bulk of the memory), and live counters for the progress line.
type Recorder struct {
	start    time.Time
	shards   []recorderShard
	tlMu     sync.Mutex
	timeline *Stats
	// Live counters.
	requests, errors, hits, lookups, inflight atomic.Int64
}

type recorderShard struct {
	mu    sync.Mutex
	stats *Stats
	_     [40]byte // keep shards on separate cache lines
}

// NewRecorder returns a recorder with n shards, timeline starting at start.
func NewRecorder(start time.Time, n int) *Recorder {
	if n < 1 {
		n = 1
	}
	r := &Recorder{start: start, shards: make([]recorderShard, n), timeline: NewStats(start)}
	for i := range r.shards {
		r.shards[i].stats = NewStats(start)
	}
	return r
}

// Record adds a sample to shard key (any int; spread keys spread the lock
// contention).
func (r *Recorder) Record(key int, x Sample) {
	if key < 0 {
		key = -key
	}
	sh := &r.shards[key%len(r.shards)]
	sh.mu.Lock()
	sh.stats.addEndpoint(x)
	sh.mu.Unlock()
	r.tlMu.Lock()
	r.timeline.addTimeline(x)
	r.tlMu.Unlock()
	if x.Skipped {
		return
	}
	r.requests.Add(1)
	if x.ErrKind != "" {
		r.errors.Add(1)
	}
	switch x.Cache {
	case CacheHit:
		r.hits.Add(1)
		r.lookups.Add(1)
	case CacheMiss, CacheStale:
		r.lookups.Add(1)
	}
}

// Snapshot merges the shards into a new Stats.
func (r *Recorder) Snapshot() *Stats {
	out := NewStats(r.start)
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		out.Merge(sh.stats)
		sh.mu.Unlock()
	}
	r.tlMu.Lock()
	out.Merge(r.timeline)
	r.tlMu.Unlock()
	return out
}

// Live is the progress counters so far.
type Live struct {
	// Requests, Errors, Hits, Lookups count since the start.
	Requests, Errors, Hits, Lookups int64
	// InFlight is the number of flows running now.
	InFlight int64
}

// Live returns the counters.
func (r *Recorder) Live() Live {
	return Live{Requests: r.requests.Load(), Errors: r.errors.Load(), Hits: r.hits.Load(), Lookups: r.lookups.Load(), InFlight: r.inflight.Load()}
}

// SecondP95 returns the 95th percentile latency of the completions in second
// sec of the run, 0 when there were none.
func (r *Recorder) SecondP95(sec int) time.Duration {
	r.tlMu.Lock()
	defer r.tlMu.Unlock()
	if sec >= len(r.timeline.Timeline) || r.timeline.Timeline[sec].Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.timeline.Timeline[sec].Latency.ValueAtQuantile(95)) * time.Microsecond
}
