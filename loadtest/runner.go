package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevJWTSecret is the origin's fixed development HS256 secret (embedded store
// only); tokens are minted with it unless another secret is given.
const DevJWTSecret = "spark-development-secret-not-for-production"

// Mode is the load model.
type Mode string

// Load models.
const (
	// ModeOpen starts flows at a planned rate whatever the responses do.
	ModeOpen Mode = "open"
	// ModeClosed runs a fixed number of workers back to back (max throughput).
	ModeClosed Mode = "closed"
)

// Limits that keep a run bounded.
const (
	MaxDuration    = time.Hour
	MaxConcurrency = 10000
	MaxUsers       = 10_000_000
)

// Config is one load test run.
type Config struct {
	// Target is the base URL of the edge or origin; only loopback hosts are
	// accepted.
	Target string
	// Scenario is the traffic mix.
	Scenario *Scenario
	// Mode is open (arrival rate) or closed (fixed concurrency).
	Mode Mode
	// Rate is the target request rate per second in open mode; flows start
	// at Rate / Scenario.MeanRequestsPerFlow() per second.
	Rate float64
	// Concurrency is the number of closed-mode workers.
	Concurrency int
	// Duration is the whole run, ramp included.
	Duration time.Duration
	// Ramp is the time to reach the full rate (or all workers).
	Ramp time.Duration
	// ThinkScale multiplies the scenario's think times (0: no pauses).
	ThinkScale float64
	// Poisson spaces open-model arrivals exponentially instead of evenly.
	Poisson bool
	// Users overrides the scenario's number of virtual users.
	Users int
	// JWTSecret signs the virtual users' tokens (default DevJWTSecret).
	JWTSecret string
	// Timeout bounds each request.
	Timeout time.Duration
	// MaxInFlight caps concurrent open-model flows; arrivals over it are
	// counted as "dropped" errors (the load generator is saturated).
	MaxInFlight int
	// SkipSetup skips the scenario's per-user setup requests.
	SkipSetup bool
	// Progress, when set, is called about once a second.
	Progress func(Progress)
}

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
}

// CheckTarget accepts only http(s) URLs on loopback hosts: load tests never
// leave this machine.
func CheckTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", target)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("target %q: only localhost and loopback addresses (127.0.0.0/8, ::1) may be load tested", target)
	}
	if u.Path == "/" {
		u.Path = ""
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validate() (*url.URL, error) {
	u, err := CheckTarget(c.Target)
	if err != nil {
		return nil, err
	}
	var errs []error
	if c.Scenario == nil {
		errs = append(errs, errors.New("no scenario"))
	}
	switch c.Mode {
	case ModeOpen:
		if c.Rate <= 0 || c.Rate > 1e6 {
			errs = append(errs, fmt.Errorf("rate must be in (0, 1e6] requests/s, got %g", c.Rate))
		}
	case ModeClosed:
		if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
			errs = append(errs, fmt.Errorf("concurrency must be in 1..%d, got %d", MaxConcurrency, c.Concurrency))
		}
	default:
		errs = append(errs, fmt.Errorf("mode must be open or closed, got %q", c.Mode))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration must be in (0, %s], got %s", MaxDuration, c.Duration))
	}
	if c.Ramp < 0 || c.Ramp >= c.Duration {
		errs = append(errs, fmt.Errorf("ramp must be in [0, duration), got %s", c.Ramp))
	}
	if c.ThinkScale < 0 {
		errs = append(errs, fmt.Errorf("think scale must be >= 0, got %g", c.ThinkScale))
	}
	if c.Users < 0 || c.Users > MaxUsers {
		errs = append(errs, fmt.Errorf("users must be in 1..%d, got %d", MaxUsers, c.Users))
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 50000
	}
	if c.JWTSecret == "" {
		c.JWTSecret = DevJWTSecret
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("loadtest config: %w", err)
	}
	return u, nil
}

// MintToken returns an HS256 bearer token for user id, valid for ttl.
func MintToken(secret string, id int64, ttl time.Duration, now time.Time) (string, error) {
	c := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(id, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    "spark-loadtest",
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("mint token for user %d: %w", id, err)
	}
	return s, nil
}

// vuPool holds the virtual users, created (and their tokens minted) on first
// use, so a million users cost only what the run touches.
type vuPool struct {
	secret string
	ttl    time.Duration
	now    time.Time
	vus    []atomic.Pointer[VU]
}

func newVUPool(secret string, users int, ttl time.Duration, now time.Time) (*vuPool, error) {
	// Fail early on a secret that cannot sign.
	if _, err := MintToken(secret, 1, ttl, now); err != nil {
		return nil, err
	}
	return &vuPool{secret: secret, ttl: ttl, now: now, vus: make([]atomic.Pointer[VU], users)}, nil
}

func (p *vuPool) len() int { return len(p.vus) }

// get returns virtual user i (user id i+1).
func (p *vuPool) get(i int) *VU {
	if v := p.vus[i].Load(); v != nil {
		return v
	}
	// Signing cannot fail once it worked for the pool's first token.
	tok, _ := MintToken(p.secret, int64(i+1), p.ttl, p.now)
	v := NewVU(int64(i+1), tok, len(p.vus))
	if p.vus[i].CompareAndSwap(nil, v) {
		return v
	}
	return p.vus[i].Load()
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
	res := &Result{Config: cfg, Users: users}
	if len(sc.Setup) > 0 && !cfg.SkipSetup {
		res.Setup = r.setup(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("loadtest setup: %w", ctx.Err())
		}
	}
	r.wireIn.Store(0)
	r.wireOut.Store(0)
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

func execTemplate(t *template.Template, v Vars) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

// do sends one request due at intended and measures it. ok is false when
// ctx was cancelled (the sample means nothing then).
func (r *run) do(ctx context.Context, vu *VU, ep *Endpoint, intended time.Time) (s Sample, ok bool) {
	s = Sample{Endpoint: ep.Name, Method: ep.Method, Intended: intended}
	req, err := r.build(ctx, vu, ep)
	if errors.Is(err, ErrSkip) {
		s.Skipped = true
		return s, true
	}
	if err != nil {
		s.ErrKind, s.Latency = ErrKindOther, time.Since(intended)
		return s, true
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req = req.WithContext(rctx)
	if req.ContentLength > 0 {
		s.BytesOut = req.ContentLength
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return s, false
		}
		s.Latency, s.ErrKind = time.Since(intended), classify(err)
		return s, true
	}
	var body []byte
	var n int64
	if len(ep.Capture) > 0 {
		body, err = io.ReadAll(resp.Body)
		n = int64(len(body))
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	s.Latency = time.Since(intended)
	s.Status, s.BytesIn = resp.StatusCode, n
	s.Cache = ParseCacheStatus(resp.Header.Get("Cache-Status"))
	if err != nil {
		if ctx.Err() != nil {
			return s, false
		}
		s.ErrKind = classify(err)
		return s, true
	}
	if !expected(ep, resp.StatusCode) {
		switch {
		case resp.StatusCode >= 500:
			s.ErrKind = ErrKind5xx
		case resp.StatusCode >= 400:
			s.ErrKind = ErrKind4xx
		default:
			s.ErrKind = ErrKindUnexpected
		}
		return s, true
	}
	if len(ep.Capture) > 0 && resp.StatusCode == http.StatusOK {
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gunzip(body); err != nil {
				s.ErrKind = ErrKindOther
				return s, true
			}
		}
		for name, path := range ep.Capture {
			vals, err := extract(body, path)
			if err != nil {
				s.ErrKind = ErrKindOther
				return s, true
			}
			vu.Set(name, vals)
		}
	}
	return s, true
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return out, nil
}

func (r *run) build(ctx context.Context, vu *VU, ep *Endpoint) (*http.Request, error) {
	v := Vars{vu: vu, zipf: r.zipf}
	path, err := execTemplate(ep.Path, v)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	var blen int
	if ep.BodyBytes != nil {
		body, blen = bytes.NewReader(ep.BodyBytes), len(ep.BodyBytes)
	}
	if ep.Body != nil {
		b, err := execTemplate(ep.Body, v)
		if err != nil {
			return nil, err
		}
		body, blen = strings.NewReader(b), len(b)
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("endpoint %s: path %q does not start with /", ep.Name, path)
	}
	req, err := http.NewRequestWithContext(ctx, ep.Method, r.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: build request: %w", ep.Name, err)
	}
	req.ContentLength = int64(blen)
	if !ep.Anonymous {
		req.Header.Set("Authorization", "Bearer "+vu.Token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "spark-loadtest/1")
	switch {
	case ep.BodyBytes != nil:
		req.Header.Set("Content-Type", "application/octet-stream") // headers: may say better
	case blen > 0:
		req.Header.Set("Content-Type", "application/json")
	}
	for h, t := range ep.Headers {
		val, err := execTemplate(t, v)
		if err != nil {
			return nil, err
		}
		if val != "" {
			req.Header.Set(h, val)
		}
	}
	return req, nil
}

func expected(ep *Endpoint, status int) bool {
	if len(ep.Expect) == 0 {
		return status/100 == 2 || status == http.StatusNotModified
	}
	for _, s := range ep.Expect {
		if s == status {
			return true
		}
	}
	return false
}

// classify names the kind of a transport error.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrKindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return ErrKindConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ErrKindConnection
	}
	return ErrKindOther
}
