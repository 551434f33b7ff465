package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained HTML report: verdicts, latency over time,
// throughput, the percentile spectrum and per-endpoint tables, all with
// inline CSS and SVG (no external assets).
func (r *Report) WriteHTML(w io.Writer) error {
	data := struct {
		R          *Report
		Over, Rate template.HTML
		Pct        template.HTML
		Cache      template.HTML
		Load       string
	}{R: r, Over: latencyChart(r), Rate: rateChart(r), Pct: percentileChart(r), Cache: cacheBar(r.Cache)}
	data.Load = fmt.Sprintf("open model · %.0f req/s planned", r.PlannedRate)
	if r.Mode == ModeClosed {
		data.Load = fmt.Sprintf("closed model · %d workers", r.Concurrency)
	}
	if err := htmlTmpl.Execute(w, data); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// Series colours, chosen to stay apart for colour-blind readers.
var palette = []string{"#2563eb", "#f59e0b", "#dc2626", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
	"#9333ea", "#ea580c", "#475569", "#be123c"}

type series struct {
	name  string
	color string
	xs    []float64
	ys    []float64
	dash  bool
}

type chart struct {
	w, h                   float64
	left, right, top, bot  float64
	xmin, xmax, ymin, ymax float64
	logY                   bool
	xLabel, yLabel         string
	xTicks                 []tick
	b                      strings.Builder
}

type tick struct {
	v     float64
	label string
}

func newChart(w, h float64) *chart {
	return &chart{w: w, h: h, left: 64, right: 150, top: 16, bot: 44}
}

func (c *chart) x(v float64) float64 {
	if c.xmax == c.xmin {
		return c.left
	}
	return c.left + (v-c.xmin)/(c.xmax-c.xmin)*(c.w-c.left-c.right)
}

func (c *chart) y(v float64) float64 {
	lo, hi := c.ymin, c.ymax
	if c.logY {
		v, lo, hi = math.Log10(math.Max(v, c.ymin)), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return c.h - c.bot
	}
	return c.h - c.bot - (v-lo)/(hi-lo)*(c.h-c.top-c.bot)
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	// The round step closest to the raw one (on a log scale).
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if math.Abs(math.Log(m*mag/raw)) < math.Abs(math.Log(step/raw)) {
			step = m * mag
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func logTicks(lo, hi float64) []float64 {
	var out []float64
	mults := []float64{1, 2, 5}
	if math.Log10(hi/lo) > 5 {
		mults = []float64{1} // wide ranges: decades only, or the labels collide
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range mults {
			v := m * math.Pow(10, e)
			if v >= lo*0.999 && v <= hi*1.001 {
				out = append(out, v)
			}
		}
	}
	return out
}

func fmtTick(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gk", v/1000)
	case v >= 1 || v == 0:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
	return fmt.Sprintf("%.2g", v)
}

func (c *chart) axes() {
	fmt.Fprintf(&c.b, `<svg viewBox="0 0 %.0f %.0f" width="100%%" role="img" xmlns="http://www.w3.org/2000/svg">`, c.w, c.h)
	var yt []float64
	if c.logY {
		yt = logTicks(c.ymin, c.ymax)
	} else {
		yt = niceTicks(c.ymin, c.ymax, 5)
	}
	for _, v := range yt {
		y := c.y(v)
		fmt.Fprintf(&c.b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, c.left, c.w-c.right, y, y)
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="tl" text-anchor="end">%s</text>`, c.left-6, y+4, fmtTick(v))
	}
	xt := c.xTicks
	if xt == nil {
		for _, v := range niceTicks(c.xmin, c.xmax, 8) {
			xt = append(xt, tick{v, fmtTick(v)})
		}
	}
	for _, t := range xt {
		x := c.x(t.v)
		fmt.Fprintf(&c.b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, x, x, c.top, c.h-c.bot)
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="tl" text-anchor="middle">%s</text>`, x, c.h-c.bot+16, template.HTMLEscapeString(t.label))
	}
	fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="frame"/>`, c.left, c.top, c.w-c.left-c.right, c.h-c.top-c.bot)
	fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="al" text-anchor="middle">%s</text>`, c.left+(c.w-c.left-c.right)/2, c.h-6, c.xLabel)
	fmt.Fprintf(&c.b, `<text transform="translate(14 %.1f) rotate(-90)" class="al" text-anchor="middle">%s</text>`, c.top+(c.h-c.top-c.bot)/2, c.yLabel)
}

func (c *chart) line(s series) {
	if len(s.xs) == 0 {
		return
	}
	var pts strings.Builder
	for i := range s.xs {
		fmt.Fprintf(&pts, "%.1f,%.1f ", c.x(s.xs[i]), c.y(s.ys[i]))
	}
	dash := ""
	if s.dash {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(&c.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s><title>%s</title></polyline>`,
		strings.TrimSpace(pts.String()), s.color, dash, template.HTMLEscapeString(s.name))
}

func (c *chart) legend(ss []series) {
	for i, s := range ss {
		y := c.top + 8 + float64(i)*18
		x := c.w - c.right + 12
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&c.b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"%s/>`, x, x+18, y, y, s.color, dash)
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="lg">%s</text>`, x+24, y+4, template.HTMLEscapeString(s.name))
	}
}

func (c *chart) done() template.HTML {
	c.b.WriteString(`</svg>`)
	return template.HTML(c.b.String()) //nolint:gosec // built from numbers and escaped names
}

func emptyChart(msg string) template.HTML {
	return template.HTML(`<p class="empty">` + template.HTMLEscapeString(msg) + `</p>`) //nolint:gosec // escaped
}

// latencyChart plots P50/P95/P99 per second and the P95 target.
func latencyChart(r *Report) template.HTML {
	var p50, p95, p99 series
	p50 = series{name: "p50", color: palette[0]}
	p95 = series{name: "p95", color: palette[1]}
	p99 = series{name: "p99", color: palette[2]}
	ymax := 0.0
	for _, p := range r.Timeline {
		if p.Requests == 0 {
			continue
		}
		x := float64(p.Second) + 0.5
		p50.xs, p50.ys = append(p50.xs, x), append(p50.ys, p.P50)
		p95.xs, p95.ys = append(p95.xs, x), append(p95.ys, p.P95)
		p99.xs, p99.ys = append(p99.xs, x), append(p99.ys, p.P99)
		ymax = math.Max(ymax, p.P99)
	}
	if len(p50.xs) == 0 {
		return emptyChart("no requests completed")
	}
	c := newChart(900, 300)
	c.xmin, c.xmax = 0, math.Max(float64(len(r.Timeline)), 1)
	c.logY = true
	c.ymin = math.Pow(10, math.Floor(math.Log10(math.Max(minPositive(p50.ys), 0.01))))
	target := r.Targets.P95.Seconds() * 1000
	c.ymax = math.Pow(10, math.Ceil(math.Log10(math.Max(ymax, target)*1.05)))
	c.xLabel, c.yLabel = "seconds since start", "latency (ms, log scale)"
	c.axes()
	tgt := series{name: "p95 target", color: "#64748b", xs: []float64{c.xmin, c.xmax}, ys: []float64{target, target}, dash: true}
	ss := []series{p50, p95, p99, tgt}
	if r.RampS > 0 {
		x := c.x(r.RampS)
		fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="ramp"/>`, c.left, c.top, x-c.left, c.h-c.top-c.bot)
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="tl">ramp-up</text>`, c.left+6, c.top+14)
	}
	for _, s := range ss {
		c.line(s)
	}
	c.legend(ss)
	return c.done()
}

func minPositive(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		if x > 0 && x < m {
			m = x
		}
	}
	if math.IsInf(m, 1) {
		return 1
	}
	return m
}

// rateChart plots completed requests per second as bars, errors in red, and
// the planned rate.
func rateChart(r *Report) template.HTML {
	if len(r.Timeline) == 0 {
		return emptyChart("no requests completed")
	}
	c := newChart(900, 220)
	c.xmin, c.xmax = 0, float64(len(r.Timeline))
	ymax := 1.0
	for _, p := range r.Timeline {
		ymax = math.Max(ymax, float64(p.Requests))
	}
	ymax = math.Max(ymax, r.PlannedRate)
	c.ymin, c.ymax = 0, ymax*1.1
	c.xLabel, c.yLabel = "seconds since start", "requests / s"
	c.axes()
	bw := (c.x(1) - c.x(0)) * 0.8
	for _, p := range r.Timeline {
		x := c.x(float64(p.Second)) + (c.x(1)-c.x(0))*0.1
		y := c.y(float64(p.Requests))
		fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%ds: %d req, %d errors</title></rect>`,
			x, y, bw, c.h-c.bot-y, palette[3], p.Second, p.Requests, p.Errors)
		if p.Errors > 0 {
			ye := c.y(float64(p.Errors))
			fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, ye, bw, math.Max(c.h-c.bot-ye, 2), palette[2])
		}
	}
	ss := []series{{name: "completed", color: palette[3]}, {name: "errors", color: palette[2]}}
	if r.Mode == ModeOpen && r.PlannedRate > 0 {
		plan := series{name: "planned", color: "#64748b", dash: true}
		if r.RampS > 0 {
			plan.xs, plan.ys = []float64{0, r.RampS, c.xmax}, []float64{0, r.PlannedRate, r.PlannedRate}
		} else {
			plan.xs, plan.ys = []float64{0, c.xmax}, []float64{r.PlannedRate, r.PlannedRate}
		}
		c.line(plan)
		ss = append(ss, plan)
	}
	c.legend(ss)
	return c.done()
}

// percentileChart plots the latency spectrum of the run and of each endpoint
// against 1/(1-q) on a log axis, so the tail gets the room it deserves.
func percentileChart(r *Report) template.HTML {
	if len(r.Percentiles) == 0 {
		return emptyChart("no requests completed")
	}
	const maxNines = 5
	xOf := func(q float64) float64 { return math.Min(-math.Log10(1-math.Min(q/100, 1-1e-9)), maxNines) }
	c := newChart(900, 340)
	c.right = 190
	c.xmin, c.xmax = 0, maxNines
	c.logY = true
	ymin, ymax := math.Inf(1), 0.0
	mk := func(name, color string, qs []Quantile, dash bool) series {
		s := series{name: name, color: color, dash: dash}
		for _, q := range qs {
			if q.Q >= 100 {
				continue // max has no place on 1/(1-q)
			}
			s.xs, s.ys = append(s.xs, xOf(q.Q)), append(s.ys, math.Max(q.Ms, 0.001))
			ymin, ymax = math.Min(ymin, math.Max(q.Ms, 0.001)), math.Max(ymax, q.Ms)
		}
		return s
	}
	ss := []series{mk("all requests", "#111827", r.Percentiles, false)}
	for i, e := range r.Endpoints {
		if len(e.Percentiles) > 0 {
			ss = append(ss, mk(e.Name, palette[i%len(palette)], e.Percentiles, true))
		}
	}
	c.ymin = math.Pow(10, math.Floor(math.Log10(ymin)))
	c.ymax = math.Pow(10, math.Ceil(math.Log10(math.Max(ymax, c.ymin*10)*1.05)))
	c.xTicks = []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	c.xLabel, c.yLabel = "percentile", "latency (ms, log scale)"
	c.axes()
	for _, s := range ss[1:] {
		c.line(s)
	}
	c.line(ss[0])
	c.legend(ss)
	return c.done()
}

// cacheBar is a horizontal stacked bar of Cache-Status outcomes.
func cacheBar(cc CacheCounts) template.HTML {
	parts := []struct {
		name  string
		n     int64
		color string
	}{{"hit", cc.Hit, palette[3]}, {"miss (stored)", cc.Miss, palette[1]}, {"revalidated/stale", cc.Stale, palette[0]},
		{"not cacheable", cc.Uncacheable, "#94a3b8"}, {"bypass (writes)", cc.Bypass, "#cbd5e1"}, {"no Cache-Status", cc.None, "#e2e8f0"}}
	var total int64
	for _, p := range parts {
		total += p.n
	}
	if total == 0 {
		return emptyChart("no responses")
	}
	var b strings.Builder
	b.WriteString(`<svg viewBox="0 0 900 70" width="100%" xmlns="http://www.w3.org/2000/svg">`)
	x := 0.0
	lx := 0.0
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		w := float64(p.n) / float64(total) * 900
		fmt.Fprintf(&b, `<rect x="%.1f" y="0" width="%.1f" height="28" fill="%s"><title>%s: %d (%.1f%%)</title></rect>`,
			x, w, p.color, p.name, p.n, 100*float64(p.n)/float64(total))
		x += w
		fmt.Fprintf(&b, `<rect x="%.1f" y="44" width="12" height="12" fill="%s"/><text x="%.1f" y="54" class="lg">%s %.1f%%</text>`,
			lx, p.color, lx+16, p.name, 100*float64(p.n)/float64(total))
		lx += 150
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and fixed names
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":    fmtMs,
	"bytes": fmtBytes,
	"ratio": fmtRatio,
	"pct":   func(f float64) string { return fmt.Sprintf("%.3f%%", 100*f) },
	"verdict": func(p *bool) string {
		return verdictWord(p)
	},
	"vclass": func(p *bool) string {
		switch {
		case p == nil:
			return "na"
		case *p:
			return "pass"
		}
		return "fail"
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spark loadtest · {{.R.Scenario}} · {{.R.Started}}</title>
<style>
:root{--fg:#0f172a;--mut:#64748b;--bd:#e2e8f0;--pass:#059669;--fail:#dc2626}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#f8fafc}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:var(--mut);margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.card{background:#fff;border:1px solid var(--bd);border-left:6px solid var(--mut);border-radius:8px;padding:12px 14px}
.card.pass{border-left-color:var(--pass)}.card.fail{border-left-color:var(--fail)}
.card .k{color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:650;margin:2px 0}
.card .t{font-size:12px;color:var(--mut)}
.badge{display:inline-block;font-weight:700;font-size:12px;padding:1px 8px;border-radius:10px;color:#fff;background:var(--mut)}
.pass .badge,.badge.pass{background:var(--pass)}.fail .badge,.badge.fail{background:var(--fail)}
.panel{background:#fff;border:1px solid var(--bd);border-radius:8px;padding:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--bd);border-radius:8px;font-variant-numeric:tabular-nums;font-size:13px}
.tw{overflow-x:auto}
th,td{padding:5px 6px;border-bottom:1px solid var(--bd);text-align:right;white-space:nowrap}
th{background:#f1f5f9;font-weight:600}td:first-child,th:first-child{text-align:left}
tr.total td{font-weight:650;background:#f8fafc}
.facts{display:grid;grid-template-columns:repeat(4,1fr);gap:4px 16px;margin:8px 0}
.facts div{color:var(--mut)}.facts b{color:var(--fg);font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#334155}svg .al{font-size:12px;fill:#475569}svg .lg{font-size:12px}
svg .grid{stroke:#e2e8f0;stroke-width:1}svg .frame{fill:none;stroke:#cbd5e1}svg .ramp{fill:#f1f5f9}
.empty{color:var(--mut);font-style:italic}
footer{color:var(--mut);font-size:12px;margin-top:24px}
</style></head><body><main>
<h1>spark loadtest: {{.R.Scenario}} <span class="badge {{if .R.Pass}}pass{{else}}fail{{end}}">{{if .R.Pass}}PASS{{else}}FAIL{{end}}</span></h1>
<p class="sub">{{.R.Target}} · {{.Load}} · {{.R.Users}} virtual users · {{printf "%.0f" .R.DurationS}} s (ramp {{printf "%.0f" .R.RampS}} s) · started {{.R.Started}}</p>
<div class="cards">
{{range .R.Verdicts}}<div class="card {{vclass .Pass}}"><div class="k">{{.Name}}</div><div class="v">{{.Actual}}</div><div class="t">target {{.Target}} · <span class="badge">{{verdict .Pass}}</span></div></div>
{{end}}</div>
<div class="facts">
<div>requests <b>{{.R.Requests}}</b></div><div>steady rate <b>{{printf "%.0f" .R.SteadyRPS}} req/s</b></div>
<div>errors <b>{{.R.Errors}} ({{pct .R.ErrorRate}})</b></div><div>skipped steps <b>{{.R.Skipped}}</b></div>
<div>body bytes in <b>{{bytes .R.BytesIn}}</b></div><div>body bytes out <b>{{bytes .R.BytesOut}}</b></div>
<div>wire in <b>{{bytes .R.WireIn}}</b></div><div>wire out <b>{{bytes .R.WireOut}}</b></div>
{{range $k, $v := .R.ErrorKinds}}<div>{{$k}} <b>{{$v}}</b></div>{{end}}
</div>
{{with .R.Chat}}<h2>Chat over spark.v1 · {{.Connections}} connections over {{len .Edges}} edges</h2>
<div class="facts">
<div>messages sent <b>{{.Messages.Sent}}</b></div><div>resent <b>{{.Messages.Resent}}</b></div>
<div>stored <b>{{.Messages.Stored}}</b></div><div>received <b>{{.Messages.Received}}</b></div>
<div>lost <b>{{.Messages.Lost}}</b></div><div>duplicated <b>{{.Messages.Duplicated}}</b></div>
<div>misdelivered <b>{{.Messages.Misdelivered}}</b></div><div>unconfirmed <b>{{.Messages.Unconfirmed}}</b></div>
<div>typing sent <b>{{.Typing.Sent}}</b></div><div>typing received <b>{{.Typing.Received}}</b></div>
<div>dropped <b>{{.Drops}}</b></div><div>resumes <b>{{.Resumes}}</b></div>
{{range $k, $v := .ServerCloses}}<div>server close {{$k}} <b>{{$v}}</b></div>{{end}}
{{range $k, $v := .ErrorFrames}}<div>error frame {{$k}} <b>{{$v}}</b></div>{{end}}
</div>
<div class="tw"><table><thead><tr><th>latency</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>
<tr><td>send→receive</td><td>{{ms .Delivery.P50}}</td><td>{{ms .Delivery.P95}}</td><td>{{ms .Delivery.P99}}</td><td>{{ms .Delivery.P999}}</td><td>{{ms .Delivery.Max}}</td></tr>
<tr><td>without drops</td><td>{{ms .DeliveryLive.P50}}</td><td>{{ms .DeliveryLive.P95}}</td><td>{{ms .DeliveryLive.P99}}</td><td>{{ms .DeliveryLive.P999}}</td><td>{{ms .DeliveryLive.Max}}</td></tr>
<tr><td>send→stored</td><td>{{ms .Stored.P50}}</td><td>{{ms .Stored.P95}}</td><td>{{ms .Stored.P99}}</td><td>{{ms .Stored.P999}}</td><td>{{ms .Stored.Max}}</td></tr>
<tr><td>typing</td><td>{{ms .Typing.Latency.P50}}</td><td>{{ms .Typing.Latency.P95}}</td><td>{{ms .Typing.Latency.P99}}</td><td>{{ms .Typing.Latency.P999}}</td><td>{{ms .Typing.Latency.Max}}</td></tr>
</tbody></table></div>
{{end}}<h2>Latency over time</h2>
<div class="panel">{{.Over}}</div>
<h2>Throughput</h2>
<div class="panel">{{.Rate}}</div>
<h2>Latency percentiles</h2>
<div class="panel">{{.Pct}}</div>
<h2>Cache (Cache-Status) · hit ratio {{ratio .R.HitRatio}}</h2>
<div class="panel">{{.Cache}}</div>
<h2>Endpoints</h2>
<div class="tw"><table><thead><tr><th>endpoint</th><th>method</th><th>requests</th><th>req/s</th><th>errors</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>hit</th><th>bytes in</th></tr></thead><tbody>
{{range .R.Endpoints}}<tr><td>{{.Name}}</td><td>{{.Method}}</td><td>{{.Requests}}</td><td>{{printf "%.1f" .RPS}}</td><td>{{.Errors}}</td><td>{{ms .Latency.P50}}</td><td>{{ms .Latency.P95}}</td><td>{{ms .Latency.P99}}</td><td>{{ms .Latency.P999}}</td><td>{{ms .Latency.Max}}</td><td>{{ratio .HitRatio}}</td><td>{{bytes .BytesIn}}</td></tr>
{{end}}<tr class="total"><td>all</td><td></td><td>{{.R.Requests}}</td><td>{{printf "%.1f" .R.RPS}}</td><td>{{.R.Errors}}</td><td>{{ms .R.Latency.P50}}</td><td>{{ms .R.Latency.P95}}</td><td>{{ms .R.Latency.P99}}</td><td>{{ms .R.Latency.P999}}</td><td>{{ms .R.Latency.Max}}</td><td>{{ratio .R.HitRatio}}</td><td>{{bytes .R.BytesIn}}</td></tr>
</tbody></table></div>
<footer>Latency is measured from when each request was due (open model: its planned arrival; later steps: the previous response plus think time), so a slow server cannot hide its queueing. Hit ratio = hits / (hits + stored misses + revalidations) from the edge's Cache-Status header. {{if .R.Description}}Scenario: {{.R.Description}}{{end}}</footer>
</main></body></html>
`))
