package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Progress is the live state of a run.
type Progress struct {
	// Elapsed is the time since the measured phase started.
	Elapsed time.Duration
	// Duration is the planned length.
	Duration time.Duration
	// Live holds the counters so far.
	Live Live
	// RPS is the completion rate over the last second.
	RPS float64
	// P95 is the 95th percentile latency of the last full second.
	P95 time.Duration
}

// String renders a one-line progress report.
func (p Progress) String() string {
	hit := "-"
	if p.Live.Lookups > 0 {
		hit = fmt.Sprintf("%.1f%%", 100*float64(p.Live.Hits)/float64(p.Live.Lookups))
	}
	errPct := 0.0
	if p.Live.Requests > 0 {
		errPct = 100 * float64(p.Live.Errors) / float64(p.Live.Requests)
	}
	return fmt.Sprintf("[%4.0fs/%.0fs] %7.0f req/s  %9d reqs  %d err (%.2f%%)  hit %s  p95 %s  in-flight %d",
		p.Elapsed.Seconds(), p.Duration.Seconds(), p.RPS, p.Live.Requests, p.Live.Errors, errPct, hit,
		fmtDur(p.P95), p.Live.InFlight)
}

// Result is a finished run.
type Result struct {
	// Config is what was run.
	Config Config
	// Users is the number of virtual users.
	Users int
	// Start and End bound the measured phase (End includes the drain).
	Start, End time.Time
	// Stats holds the measured samples.
	Stats *Stats
	// Setup holds the setup requests' samples (not measured).
	Setup *Stats
	// WireIn and WireOut count bytes read from and written to the network.
	WireIn, WireOut int64
	// Checks is the correctness checker's summary, nil when no endpoint
	// has a check.
	Checks *CheckResult
}

// run is the state of one Run.
type run struct {
	cfg      Config
	base     string
	client   *http.Client
	zipf     *Zipf
	vus      *vuPool
	flowCum  []float64
	rec      *Recorder
	ledger   *Ledger   // nil when no endpoint has a check
	trace    *tracer   // nil without Config.Trace
	end      time.Time // no step starts after this
	wireIn   atomic.Int64
	wireOut  atomic.Int64
	flows    sync.WaitGroup
	inflight chan struct{}
}

// Run executes a load test and returns its measurements. It returns early,
// with what was measured, when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	sc := cfg.Scenario
	users := cfg.Users
	if users == 0 {
		users = sc.Users
	}
	if users == 0 {
		users = 1000
	}
	r := &run{cfg: cfg, base: strings.TrimSuffix(u.String(), "/"), zipf: NewZipf(users, sc.ZipfS),
		inflight: make(chan struct{}, cfg.MaxInFlight)}
	r.client = &http.Client{Transport: r.transport(), CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	defer r.client.CloseIdleConnections()
	var sum float64
	for _, f := range sc.Flows {
		sum += f.Weight
		r.flowCum = append(r.flowCum, sum)
	}
	pool, err := newVUPool(cfg.JWTSecret, users, cfg.Duration+time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	r.vus = pool
	if sc.hasChecks() {
		r.ledger = NewLedger()
	}
	res := &Result{Config: cfg, Users: users}
	if len(sc.Setup) > 0 && !cfg.SkipSetup {
		res.Setup = r.setup(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("loadtest setup: %w", ctx.Err())
		}
	}
	r.wireIn.Store(0)
	r.wireOut.Store(0)
	r.trace = newTracer(cfg.Trace) // the setup's requests are not traced
	start := time.Now()
	r.rec = NewRecorder(start, 8)
	r.end = start.Add(cfg.Duration)
	stopProgress := r.progress(ctx, start)
	if cfg.Mode == ModeOpen {
		r.open(ctx, start)
	} else {
		r.closed(ctx, start)
	}
	r.flows.Wait()
	stopProgress()
	res.Start, res.End = start, time.Now()
	res.Stats = r.rec.Snapshot()
	res.WireIn, res.WireOut = r.wireIn.Load(), r.wireOut.Load()
	if r.ledger != nil {
		res.Checks = r.ledger.Result()
	}
	if err := r.trace.flush(); err != nil {
		return res, err
	}
	return res, nil
}

// transport dials only loopback addresses and counts wire bytes.
func (r *run) transport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("dial %s: refusing a non-loopback address", address)
			}
			return nil
		}}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err //nolint:wrapcheck // net.OpError already names the address
			}
			return &countingConn{Conn: c, in: &r.wireIn, out: &r.wireOut}, nil
		},
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

// Read counts the bytes read.
func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err //nolint:wrapcheck // io errors pass through unchanged for net/http
}

// Write counts the bytes written.
func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err //nolint:wrapcheck // io errors pass through unchanged for net/http
}

// setupWorkers is how many virtual users run their setup at once: few, as
// setup requests may be heavy (photo uploads) and are not measured.
const setupWorkers = 4

// setup runs the scenario's setup endpoints once per virtual user,
// setupWorkers users at a time.
func (r *run) setup(ctx context.Context) *Stats {
	rec := NewRecorder(time.Now(), 4)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < setupWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= r.vus.len() || ctx.Err() != nil {
					return
				}
				for _, ep := range r.cfg.Scenario.Setup {
					if s, ok := r.do(ctx, r.vus.get(i), ep, time.Now()); ok {
						rec.Record(i, s)
					}
				}
			}
		}()
	}
	wg.Wait()
	return rec.Snapshot()
}

// progress reports once a second until the returned stop is called.
func (r *run) progress(ctx context.Context, start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		lastAt := start
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case now := <-t.C:
				live := r.rec.Live()
				p := Progress{Elapsed: now.Sub(start), Duration: r.cfg.Duration, Live: live,
					RPS: float64(live.Requests-last) / now.Sub(lastAt).Seconds()}
				if sec := int(now.Sub(start)/time.Second) - 1; sec >= 0 {
					p.P95 = r.rec.SecondP95(sec)
				}
				last, lastAt = live.Requests, now
				r.cfg.Progress(p)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// open starts flows on the planned schedule until the duration is over.
func (r *run) open(ctx context.Context, start time.Time) {
	flowRate := r.cfg.Rate / r.cfg.Scenario.MeanRequestsPerFlow()
	sched := Schedule{Rate: flowRate, Ramp: r.cfg.Ramp, Duration: r.cfg.Duration, Poisson: r.cfg.Poisson}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for at := range sched.Arrivals(rng) {
		intended := start.Add(at)
		if d := time.Until(intended); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		flow := r.pickFlow(rand.Float64())
		vi := rand.IntN(r.vus.len())
		select {
		case r.inflight <- struct{}{}:
		default:
			ep := flow.Steps[0].Endpoint
			r.rec.Record(vi, Sample{Endpoint: ep.Name, Method: ep.Method, Intended: intended, ErrKind: ErrKindDropped})
			continue
		}
		r.flows.Add(1)
		r.rec.inflight.Add(1)
		go func() {
			defer func() { <-r.inflight; r.rec.inflight.Add(-1); r.flows.Done() }()
			r.runFlow(ctx, vi, flow, intended)
		}()
	}
}

// closed runs Concurrency workers, started evenly over the ramp, each running
// flows back to back until the duration is over.
func (r *run) closed(ctx context.Context, start time.Time) {
	n := r.cfg.Concurrency
	for w := 0; w < n; w++ {
		delay := time.Duration(float64(r.cfg.Ramp) * float64(w) / float64(n))
		r.flows.Add(1)
		go func() {
			defer r.flows.Done()
			if !sleepUntil(ctx, start.Add(delay)) {
				return
			}
			r.rec.inflight.Add(1)
			defer r.rec.inflight.Add(-1)
			for ctx.Err() == nil && time.Now().Before(r.end) {
				vi := rand.IntN(r.vus.len())
				r.runFlow(ctx, vi, r.pickFlow(rand.Float64()), time.Now())
			}
		}()
	}
}

func (r *run) pickFlow(u float64) *Flow {
	x := u * r.flowCum[len(r.flowCum)-1]
	for i, c := range r.flowCum {
		if x < c {
			return r.cfg.Scenario.Flows[i]
		}
	}
	return r.cfg.Scenario.Flows[len(r.cfg.Scenario.Flows)-1]
}

// runFlow runs a flow's steps for one virtual user. The first request is
// due at intended; each later one is due a think time after the previous
// response. Latency always counts from when a request was due.
func (r *run) runFlow(ctx context.Context, vi int, f *Flow, intended time.Time) {
	vu := r.vus.get(vi)
	due := intended
	first := true
	for _, st := range f.Steps {
		think := r.cfg.Scenario.Think
		if st.Think != nil {
			think = *st.Think
		}
		for k := 0; k < st.Repeat; k++ {
			if !first {
				due = time.Now().Add(r.think(think))
			}
			first = false
			if due.After(r.end) || !sleepUntil(ctx, due) {
				return
			}
			s, ok := r.do(ctx, vu, st.Endpoint, due)
			if !ok {
				return // cancelled
			}
			r.rec.Record(vi, s)
		}
	}
}

func (r *run) think(t ThinkRange) time.Duration {
	if r.cfg.ThinkScale == 0 || t.Max == 0 {
		return 0
	}
	d := t.Min
	if t.Max > t.Min {
		d += time.Duration(rand.Int64N(int64(t.Max - t.Min)))
	}
	return time.Duration(float64(d) * r.cfg.ThinkScale)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
