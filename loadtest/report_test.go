package loadtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// syntheticResult is a 10 s open-model run with 2 s of ramp: 1000 req/s
// steady, 10 ms everywhere except a slow tail on "slow".
func syntheticResult(t *testing.T, hit bool, errorsEvery int) *Result {
	t.Helper()
	sc := mustScenario(t, oneEndpoint)
	sc.Description = `desc with <script>alert(1)</script>`
	start := time.Unix(1_700_000_000, 0)
	st := NewStats(start)
	n := 0
	for sec := 0; sec < 10; sec++ {
		perSec := 1000
		if sec < 2 {
			perSec = 500
		}
		for i := 0; i < perSec; i++ {
			n++
			s := Sample{Endpoint: "fast", Method: "GET", Intended: start.Add(time.Duration(sec)*time.Second + time.Duration(i)*time.Millisecond/2),
				Latency: 10 * time.Millisecond, Status: 200, BytesIn: 100, Cache: CacheMiss}
			if hit && i%10 != 0 {
				s.Cache = CacheHit
			}
			if i%100 == 0 {
				s.Endpoint, s.Method, s.Latency, s.Cache = "slow", "POST", 300*time.Millisecond, CacheBypass
			}
			if errorsEvery > 0 && n%errorsEvery == 0 {
				s.Status, s.ErrKind = 503, ErrKind5xx
			}
			record(st, s)
		}
	}
	return &Result{Config: Config{Target: "http://127.0.0.1:8080", Scenario: sc, Mode: ModeOpen, Rate: 1000,
		Duration: 10 * time.Second, Ramp: 2 * time.Second, ThinkScale: 1}, Users: 100, Start: start,
		End: start.Add(10 * time.Second), Stats: st, WireIn: 12345, WireOut: 678}
}

func verdictMap(r *Report) map[string]*bool {
	m := map[string]*bool{}
	for _, v := range r.Verdicts {
		m[v.Name] = v.Pass
	}
	return m
}

func TestReportNumbersAndVerdicts(t *testing.T) {
	rep := NewReport(syntheticResult(t, true, 0), DefaultTargets())
	if rep.Requests != 9000 || rep.Errors != 0 {
		t.Fatalf("requests %d errors %d", rep.Requests, rep.Errors)
	}
	if rep.SteadyRPS != 1000 || rep.RPS != 900 {
		t.Errorf("steady %g rps %g, want 1000 and 900", rep.SteadyRPS, rep.RPS)
	}
	// 1% of requests take 300 ms: p95 is 10 ms, p99.9 is 300 ms.
	if rep.Latency.P95 < 9.9 || rep.Latency.P95 > 10.1 || rep.Latency.P999 < 299 || rep.Latency.P999 > 301 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if rep.HitRatio == nil || *rep.HitRatio < 0.9 || *rep.HitRatio > 0.92 {
		t.Errorf("hit ratio %v", rep.HitRatio)
	}
	if len(rep.Endpoints) != 2 || rep.Endpoints[1].Name != "slow" || rep.Endpoints[1].HitRatio != nil {
		t.Errorf("endpoints %+v", rep.Endpoints)
	}
	v := verdictMap(rep)
	if !*v["P95 latency"] || *v["Throughput"] || !*v["Errors"] || !*v["Cache hit ratio"] || rep.Pass {
		t.Errorf("verdicts %+v pass %v: want only throughput (1000 < 2000) to fail", rep.Verdicts, rep.Pass)
	}
	loose := DefaultTargets()
	loose.RPS = 500
	if rep := NewReport(syntheticResult(t, true, 0), loose); !rep.Pass {
		t.Errorf("with a 500 req/s target the run should pass: %+v", rep.Verdicts)
	}
	bad := NewReport(syntheticResult(t, false, 100), loose)
	v = verdictMap(bad)
	if *v["Errors"] || *v["Cache hit ratio"] || bad.Pass {
		t.Errorf("1%% errors and 0%% hits should fail: %+v", bad.Verdicts)
	}
	if bad.ErrorKinds[ErrKind5xx] != 90 {
		t.Errorf("error kinds %v", bad.ErrorKinds)
	}
	// No Cache-Status at all (an origin): the hit verdict cannot be judged.
	res := syntheticResult(t, false, 0)
	for _, e := range res.Stats.Endpoints {
		e.Cache = CacheCounts{None: e.Requests}
	}
	if v := verdictMap(NewReport(res, loose)); v["Cache hit ratio"] != nil {
		t.Errorf("hit verdict without Cache-Status = %v, want n/a", *v["Cache hit ratio"])
	}
	if len(rep.Timeline) != 10 || rep.Timeline[5].Requests != 1000 || len(rep.Percentiles) == 0 {
		t.Errorf("timeline %d points, percentiles %d", len(rep.Timeline), len(rep.Percentiles))
	}
	for i := 1; i < len(rep.Percentiles); i++ {
		if rep.Percentiles[i].Ms < rep.Percentiles[i-1].Ms || rep.Percentiles[i].Q < rep.Percentiles[i-1].Q {
			t.Fatalf("percentile spectrum not monotone at %d: %+v", i, rep.Percentiles[i-1:i+1])
		}
	}
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := NewReport(syntheticResult(t, true, 0), DefaultTargets()).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"scenario one against http://127.0.0.1:8080", "9000 requests", "steady 1000",
		"fast", "slow", "TOTAL", "P95 latency", "< 200.0ms", "Throughput", "FAIL", "Cache hit ratio", "90.9%"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := NewReport(syntheticResult(t, true, 0), DefaultTargets())
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteFile(path, rep.WriteJSON); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	backp, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	back := *backp
	if _, err := ReadReport(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("ReadReport of a missing file: no error")
	}
	if back.Requests != rep.Requests || back.Latency != rep.Latency || len(back.Endpoints) != 2 || *back.HitRatio != *rep.HitRatio ||
		len(back.Timeline) != len(rep.Timeline) || back.Pass != rep.Pass || back.Targets != rep.Targets {
		t.Errorf("round trip lost data")
	}
	var raw map[string]any
	_ = json.Unmarshal(data, &raw)
	if tg, _ := raw["targets"].(map[string]any); tg["p95_ms"] != 200.0 {
		t.Errorf("targets in JSON: %v, want p95_ms 200", raw["targets"])
	}
	for _, k := range []string{"steady_rps", "verdicts", "timeline", "percentiles", "error_rate", "wire_bytes_in", "hit_ratio"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "r.json"), rep.WriteJSON); err == nil {
		t.Error("writing into a missing directory: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReportHTMLSelfContained(t *testing.T) {
	for _, res := range []*Result{syntheticResult(t, true, 50), {Config: syntheticResult(t, false, 0).Config, Stats: NewStats(time.Now())}} {
		var b bytes.Buffer
		rep := NewReport(res, DefaultTargets())
		if err := rep.WriteHTML(&b); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		for _, bad := range []string{"<script", "<link", "src=", "url(", "@import", "<img"} {
			if strings.Contains(html, bad) {
				t.Errorf("HTML contains %q: not self-contained or not escaped", bad)
			}
		}
		if !strings.Contains(html, "&lt;script&gt;") {
			t.Error("scenario description not escaped")
		}
		svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(html, -1)
		if rep.Requests > 0 && len(svgs) != 4 {
			t.Errorf("%d SVG charts, want 4 (latency over time, throughput, percentiles, cache)", len(svgs))
		}
		for i, s := range svgs {
			d := xml.NewDecoder(strings.NewReader(s))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("SVG %d is not well-formed: %v", i, err)
				}
			}
			if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
				t.Errorf("SVG %d has NaN/Inf coordinates", i)
			}
		}
		if rep.Requests > 0 {
			for _, want := range []string{"Latency over time", "Latency percentiles", "p95 target", "fast", "99.9%", "FAIL"} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML lacks %q", want)
				}
			}
		} else if !strings.Contains(html, "no requests completed") {
			t.Error("empty run: HTML does not say so")
		}
	}
	if err := NewReport(syntheticResult(t, true, 0), DefaultTargets()).WriteHTML(failWriter{}); err == nil {
		t.Error("write error not reported")
	}
}

func TestChartTicks(t *testing.T) {
	if got := logTicks(1, 1000); len(got) != 10 || got[0] != 1 || got[9] != 1000 {
		t.Errorf("logTicks(1, 1000) = %v", got)
	}
	if got := logTicks(0.01, 1e8); len(got) != 11 {
		t.Errorf("logTicks over 10 decades = %v, want one per decade", got)
	}
	if got := niceTicks(0, 2600, 5); got[0] != 0 || got[len(got)-1] > 2600 || len(got) < 4 || len(got) > 8 {
		t.Errorf("niceTicks(0, 2600) = %v", got)
	}
}
