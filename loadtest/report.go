package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Targets are the plan's goals a run is judged against.
type Targets struct {
	// P95 is the highest acceptable 95th percentile latency.
	P95 time.Duration
	// RPS is the lowest acceptable achieved request rate.
	RPS float64
	// ErrorRate is the highest acceptable share of failed requests.
	ErrorRate float64
	// HitRatio is the lowest acceptable cache hit ratio.
	HitRatio float64
}

type targetsJSON struct {
	P95Ms     float64 `json:"p95_ms"`
	RPS       float64 `json:"rps"`
	ErrorRate float64 `json:"error_rate"`
	HitRatio  float64 `json:"hit_ratio"`
}

// MarshalJSON writes the P95 target in milliseconds.
func (t Targets) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(targetsJSON{P95Ms: float64(t.P95) / float64(time.Millisecond), RPS: t.RPS, ErrorRate: t.ErrorRate, HitRatio: t.HitRatio})
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return b, nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Targets) UnmarshalJSON(b []byte) error {
	var j targetsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	*t = Targets{P95: time.Duration(j.P95Ms * float64(time.Millisecond)), RPS: j.RPS, ErrorRate: j.ErrorRate, HitRatio: j.HitRatio}
	return nil
}

// DefaultTargets are the plan's: P95 < 200 ms, > 2000 RPS, < 0.1% errors,
// hit rate > 90%.
func DefaultTargets() Targets {
	return Targets{P95: 200 * time.Millisecond, RPS: 2000, ErrorRate: 0.001, HitRatio: 0.90}
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`  // median
	P95  float64 `json:"p95_ms"`  // 95th percentile
	P99  float64 `json:"p99_ms"`  // 99th percentile
	P999 float64 `json:"p999_ms"` // 99.9th percentile
	Max  float64 `json:"max_ms"`  // slowest request
	Mean float64 `json:"mean_ms"` // arithmetic mean
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{P50: ms(h.ValueAtQuantile(50)), P95: ms(h.ValueAtQuantile(95)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000}
}

// EndpointReport is one endpoint's line in the report.
type EndpointReport struct {
	Name       string           `json:"name"`                  // scenario endpoint name
	Method     string           `json:"method"`                // HTTP method
	Requests   int64            `json:"requests"`              // requests sent, failed ones included
	RPS        float64          `json:"rps"`                   // requests per second over the run
	Errors     int64            `json:"errors"`                // failed requests
	Skipped    int64            `json:"skipped"`               // steps with nothing to send (ErrSkip)
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"` // failures by kind (ErrKind*)
	Statuses   map[string]int64 `json:"statuses"`              // responses by HTTP status
	Latency    Latency          `json:"latency"`               // latency summary
	Cache      CacheCounts      `json:"cache"`                 // responses by Cache-Status
	// HitRatio is null when the endpoint saw no cacheable responses.
	HitRatio *float64 `json:"hit_ratio"`
	BytesIn  int64    `json:"bytes_in"`  // response body bytes
	BytesOut int64    `json:"bytes_out"` // request body bytes
	// Percentiles is the latency spectrum, for the percentile plot.
	Percentiles []Quantile `json:"percentiles"`
}

// spectrum samples a histogram's percentiles on a log scale of 1/(1-q):
// 0, 50, 68.4, 90, ..., 99.999, 100.
func spectrum(h *hdrhistogram.Histogram) []Quantile {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []Quantile
	for k := 0; k <= 50; k++ {
		q := 100 * (1 - math.Pow(10, -float64(k)/10))
		v := h.ValueAtQuantile(q)
		if k == 0 {
			v = h.Min()
		}
		out = append(out, Quantile{Q: q, Ms: float64(v) / 1000})
	}
	return append(out, Quantile{Q: 100, Ms: float64(h.Max()) / 1000})
}

// Point is one second of the timeline.
type Point struct {
	Second   int      `json:"t"`         // seconds since the start
	Requests int64    `json:"requests"`  // completions in the second
	Errors   int64    `json:"errors"`    // failures in the second
	P50      float64  `json:"p50_ms"`    // median latency (ms)
	P95      float64  `json:"p95_ms"`    // 95th percentile (ms)
	P99      float64  `json:"p99_ms"`    // 99th percentile (ms)
	Max      float64  `json:"max_ms"`    // slowest (ms)
	HitRatio *float64 `json:"hit_ratio"` // hit ratio; null without cacheable responses
}

// Quantile is one point of the latency distribution.
type Quantile struct {
	Q  float64 `json:"q"`  // percentile, 0..100
	Ms float64 `json:"ms"` // latency at Q (ms)
}

// Verdict is one target's pass or fail.
type Verdict struct {
	Name   string `json:"name"`   // what is judged
	Target string `json:"target"` // the goal, readable
	Actual string `json:"actual"` // the measured value, readable
	// Pass is null when the run cannot tell (no Cache-Status seen).
	Pass *bool `json:"pass"`
}

// Report is everything a run measured, ready for JSON, text or HTML.
type Report struct {
	Scenario    string           `json:"scenario"`              // scenario name
	Description string           `json:"description,omitempty"` // scenario description
	Target      string           `json:"target"`                // base URL tested
	Mode        Mode             `json:"mode"`                  // open or closed
	PlannedRate float64          `json:"planned_rps,omitempty"` // open mode: planned req/s
	Concurrency int              `json:"concurrency,omitempty"` // closed mode: workers
	Users       int              `json:"users"`                 // virtual users
	Started     string           `json:"started"`               // start time, RFC 3339 UTC
	DurationS   float64          `json:"duration_s"`            // planned duration (s), ramp included
	RampS       float64          `json:"ramp_s"`                // ramp-up (s)
	ThinkScale  float64          `json:"think_scale"`           // think-time multiplier
	Requests    int64            `json:"requests"`              // requests sent
	Errors      int64            `json:"errors"`                // failed requests
	ErrorRate   float64          `json:"error_rate"`            // Errors / Requests
	ErrorKinds  map[string]int64 `json:"error_kinds"`           // failures by kind
	Skipped     int64            `json:"skipped"`               // steps with nothing to send
	// RPS is over the whole run; SteadyRPS over the steady window, from
	// SteadyFromS (after the ramp and the flows' think times) to the end.
	RPS           float64          `json:"rps"`
	SteadyRPS     float64          `json:"steady_rps"`               // req/s in the steady window
	SteadyFromS   float64          `json:"steady_from_s"`            // start of the steady window (s)
	Latency       Latency          `json:"latency"`                  // latency over all requests
	Cache         CacheCounts      `json:"cache"`                    // responses by Cache-Status
	HitRatio      *float64         `json:"hit_ratio"`                // hits / lookups; null without Cache-Status
	BytesIn       int64            `json:"bytes_in"`                 // response body bytes
	BytesOut      int64            `json:"bytes_out"`                // request body bytes
	WireIn        int64            `json:"wire_bytes_in"`            // bytes read from the network
	WireOut       int64            `json:"wire_bytes_out"`           // bytes written to the network
	SetupRequests int64            `json:"setup_requests"`           // setup requests (not measured)
	SetupErrors   int64            `json:"setup_errors"`             // failed setup requests
	SetupStatuses map[string]int64 `json:"setup_statuses,omitempty"` // setup responses by status, and failures by kind
	Endpoints     []EndpointReport `json:"endpoints"`                // per-endpoint lines, by name
	Timeline      []Point          `json:"timeline"`                 // one point per second
	Percentiles   []Quantile       `json:"percentiles"`              // latency spectrum over all requests
	Targets       Targets          `json:"targets"`                  // the goals judged against
	Verdicts      []Verdict        `json:"verdicts"`                 // one per target
	Pass          bool             `json:"pass"`                     // every judged target met
	// Chat is the chat scenario's delivery figures (loadtest/chat).
	Chat *ChatReport `json:"chat,omitempty"`
	// Checks is the correctness checker's count of stale responses (the
	// dating scenario's checks); any violation fails the run.
	Checks *CheckResult `json:"checks,omitempty"`
}

func ratio(c CacheCounts) *float64 {
	if r, ok := c.HitRatio(); ok {
		return &r
	}
	return nil
}

// NewReport summarises a result against targets.
func NewReport(res *Result, t Targets) *Report {
	cfg := res.Config
	rep := &Report{Scenario: cfg.Scenario.Name, Description: cfg.Scenario.Description, Target: cfg.Target, Mode: cfg.Mode,
		Users: res.Users, Started: res.Start.UTC().Format(time.RFC3339), DurationS: cfg.Duration.Seconds(),
		RampS: cfg.Ramp.Seconds(), ThinkScale: cfg.ThinkScale, WireIn: res.WireIn, WireOut: res.WireOut, Targets: t}
	if cfg.Mode == ModeOpen {
		rep.PlannedRate = cfg.Rate
	} else {
		rep.Concurrency = cfg.Concurrency
	}
	if res.Setup != nil {
		st := res.Setup.Total()
		rep.SetupRequests, rep.SetupErrors = st.Requests, st.Errors
		rep.SetupStatuses = map[string]int64{}
		for code, n := range st.Statuses {
			rep.SetupStatuses[fmt.Sprint(code)] = n
		}
		for kind, n := range st.ErrorKinds {
			if kind != ErrKind4xx && kind != ErrKind5xx && kind != ErrKindUnexpected {
				rep.SetupStatuses[kind] = n
			}
		}
	}
	s := res.Stats
	tot := s.Total()
	rep.Requests, rep.Errors, rep.Skipped = tot.Requests, tot.Errors, tot.Skipped
	rep.ErrorKinds = tot.ErrorKinds
	if tot.Requests > 0 {
		rep.ErrorRate = float64(tot.Errors) / float64(tot.Requests)
	}
	elapsed := cfg.Duration.Seconds()
	if elapsed > 0 {
		rep.RPS = float64(tot.Requests) / elapsed
	}
	// Steady rate: completions in the whole seconds after the ramp (plus,
	// in open mode, the mean flow length: a flow's later requests lag its
	// arrival by its think times) and before the end of the planned
	// duration.
	settle := cfg.Ramp
	if cfg.Mode == ModeOpen {
		settle += time.Duration(float64(cfg.Scenario.MeanFlowThink()) * cfg.ThinkScale)
	}
	from, to := int(math.Ceil(settle.Seconds())), int(cfg.Duration.Seconds())
	if to-from < 2 {
		from = int(math.Ceil(cfg.Ramp.Seconds()))
	}
	rep.SteadyFromS = float64(from)
	var steady int64
	for i := from; i < to && i < len(s.Timeline); i++ {
		steady += s.Timeline[i].Requests
	}
	if to > from {
		rep.SteadyRPS = float64(steady) / float64(to-from)
	} else {
		rep.SteadyRPS = rep.RPS
	}
	rep.Latency = latencyOf(tot.Latency)
	rep.Cache, rep.HitRatio = tot.Cache, ratio(tot.Cache)
	rep.BytesIn, rep.BytesOut = tot.BytesIn, tot.BytesOut
	for _, name := range s.EndpointNames() {
		e := s.Endpoints[name]
		er := EndpointReport{Name: e.Name, Method: e.Method, Requests: e.Requests, Errors: e.Errors, Skipped: e.Skipped,
			ErrorKinds: e.ErrorKinds, Statuses: map[string]int64{}, Latency: latencyOf(e.Latency), Cache: e.Cache,
			HitRatio: ratio(e.Cache), BytesIn: e.BytesIn, BytesOut: e.BytesOut}
		if elapsed > 0 {
			er.RPS = float64(e.Requests) / elapsed
		}
		er.Percentiles = spectrum(e.Latency)
		for code, n := range e.Statuses {
			er.Statuses[fmt.Sprint(code)] = n
		}
		rep.Endpoints = append(rep.Endpoints, er)
	}
	for i, b := range s.Timeline {
		p := Point{Second: i, Requests: b.Requests, Errors: b.Errors, HitRatio: ratio(b.Cache)}
		if b.Latency.TotalCount() > 0 {
			l := latencyOf(b.Latency)
			p.P50, p.P95, p.P99, p.Max = l.P50, l.P95, l.P99, l.Max
		}
		rep.Timeline = append(rep.Timeline, p)
	}
	rep.Percentiles = spectrum(tot.Latency)
	rep.Checks = res.Checks
	rep.Verdicts, rep.Pass = verdicts(rep, t)
	return rep
}

func verdicts(r *Report, t Targets) ([]Verdict, bool) {
	b := func(v bool) *bool { return &v }
	vs := []Verdict{
		{Name: "P95 latency", Target: fmt.Sprintf("< %s", fmtDur(t.P95)), Actual: fmtMs(r.Latency.P95),
			Pass: b(r.Requests > 0 && r.Latency.P95 < float64(t.P95)/float64(time.Millisecond))},
		{Name: "Throughput", Target: fmt.Sprintf("> %.0f req/s", t.RPS), Actual: fmt.Sprintf("%.0f req/s", r.SteadyRPS),
			Pass: b(r.SteadyRPS > t.RPS)},
		{Name: "Errors", Target: fmt.Sprintf("< %.2g%%", 100*t.ErrorRate), Actual: fmt.Sprintf("%.3f%%", 100*r.ErrorRate),
			Pass: b(r.Requests > 0 && r.ErrorRate < t.ErrorRate)},
	}
	hv := Verdict{Name: "Cache hit ratio", Target: fmt.Sprintf("> %.0f%% (no Cache-Status seen)", 100*t.HitRatio), Actual: "n/a"}
	if r.HitRatio != nil {
		hv.Target = fmt.Sprintf("> %.0f%%", 100*t.HitRatio)
		hv.Actual = fmt.Sprintf("%.1f%%", 100**r.HitRatio)
		hv.Pass = b(*r.HitRatio > t.HitRatio)
	}
	vs = append(vs, hv)
	if r.Checks != nil {
		vs = append(vs, Verdict{Name: "Stale responses", Target: "0",
			Actual: fmt.Sprintf("%d of %d checked", r.Checks.Violations, r.Checks.Checked), Pass: b(r.Checks.Violations == 0)})
	}
	pass := true
	for _, v := range vs {
		if v.Pass != nil && !*v.Pass {
			pass = false
		}
	}
	return vs, pass
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtMs(ms float64) string { return fmtDur(time.Duration(ms * float64(time.Millisecond))) }

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**r)
}

// WriteText writes the summary tables.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	load := fmt.Sprintf("open model, %.0f req/s planned", r.PlannedRate)
	if r.Mode == ModeClosed {
		load = fmt.Sprintf("closed model, %d workers", r.Concurrency)
	}
	fmt.Fprintf(&b, "\nspark loadtest: scenario %s against %s\n", r.Scenario, r.Target)
	fmt.Fprintf(&b, "%s, %d users, %.0fs (ramp %.0fs), think x%g\n", load, r.Users, r.DurationS, r.RampS, r.ThinkScale)
	if r.SetupRequests > 0 {
		fmt.Fprintf(&b, "setup: %d requests, %d errors (%s)\n", r.SetupRequests, r.SetupErrors, countsText(r.SetupStatuses))
	}
	fmt.Fprintf(&b, "\n%d requests, %.0f req/s (steady %.0f from %.0fs), %d errors (%.3f%%), %d skipped, hit ratio %s\n",
		r.Requests, r.RPS, r.SteadyRPS, r.SteadyFromS, r.Errors, 100*r.ErrorRate, r.Skipped, fmtRatio(r.HitRatio))
	fmt.Fprintf(&b, "bytes: bodies %s in / %s out, wire %s in / %s out\n", fmtBytes(r.BytesIn), fmtBytes(r.BytesOut),
		fmtBytes(r.WireIn), fmtBytes(r.WireOut))
	if len(r.ErrorKinds) > 0 {
		fmt.Fprintf(&b, "errors by kind: %s\n", countsText(r.ErrorKinds))
	}
	if c := r.Checks; c != nil {
		fmt.Fprintf(&b, "correctness: %d responses checked, %d violations%s\n", c.Checked, c.Violations, bracketed(countsText(c.ByCheck)))
		for _, e := range c.Examples {
			fmt.Fprintf(&b, "  violation: %s\n", e)
		}
	}
	if r.Chat != nil {
		if err := r.Chat.writeText(&b); err != nil {
			return err
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\tmethod\treqs\treq/s\terrors\tp50\tp95\tp99\tp99.9\tmax\thit\tbytes in\t")
	row := func(e EndpointReport) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", e.Name, e.Method, e.Requests, e.RPS, e.Errors,
			fmtMs(e.Latency.P50), fmtMs(e.Latency.P95), fmtMs(e.Latency.P99), fmtMs(e.Latency.P999), fmtMs(e.Latency.Max),
			fmtRatio(e.HitRatio), fmtBytes(e.BytesIn))
	}
	for _, e := range r.Endpoints {
		row(e)
	}
	row(EndpointReport{Name: "TOTAL", Requests: r.Requests, RPS: r.RPS, Errors: r.Errors, Latency: r.Latency,
		HitRatio: r.HitRatio, BytesIn: r.BytesIn})
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("report table: %w", err)
	}
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured\tverdict")
	for _, v := range r.Verdicts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Target, v.Actual, verdictWord(v.Pass))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("report verdicts: %w", err)
	}
	overall := "PASS: every target met"
	if !r.Pass {
		overall = "FAIL: some targets missed"
	}
	fmt.Fprintf(&b, "\n%s\n", overall)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func verdictWord(p *bool) string {
	switch {
	case p == nil:
		return "n/a"
	case *p:
		return "PASS"
	}
	return "FAIL"
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// WriteFile writes the report to path with write (WriteJSON or WriteHTML).
func WriteFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close report %s: %w", path, cerr)
		}
	}()
	return write(f)
}

// ReadReport loads a report written by WriteJSON, e.g. to render it again.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return &r, nil
}

// countsText renders {"a": 1, "b": 2} as "a=1 b=2", sorted.
func countsText(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// bracketed is " (s)", or "" for an empty s.
func bracketed(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
