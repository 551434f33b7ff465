package deploy

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSelectors(t *testing.T) {
	got, err := selectors(`histogram_quantile(0.95, sum by (le) (rate(spark_cache_origin_fetch_seconds_bucket{cache=~"$cache"}[$__rate_interval])))
		/ on() group_left {__name__="spark_cache_entries", job="edge"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []selector{
		{Metric: "spark_cache_origin_fetch_seconds_bucket", Labels: []string{"cache"}},
		{Metric: "spark_cache_entries", Labels: []string{"job"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("selectors = %+v, want %+v", got, want)
	}
	for _, bad := range []string{`{job="edge"}`, `{__name__=~"spark_.*"}`, `rate(spark_x[5m]`, `sum(spark_x) by`} {
		if _, err := selectors(bad); err == nil {
			t.Errorf("selectors(%q): no error", bad)
		}
	}
}

// exposition is a scrape of a process exporting a counter with labels, a
// histogram and a gauge.
const exposition = `# HELP spark_cache_requests_total Requests.
# TYPE spark_cache_requests_total counter
spark_cache_requests_total{cache="default",layer="l1",result="hit"} 3
# HELP spark_cache_origin_fetch_seconds Fetch time.
# TYPE spark_cache_origin_fetch_seconds histogram
spark_cache_origin_fetch_seconds_bucket{cache="default",le="0.1"} 1
spark_cache_origin_fetch_seconds_bucket{cache="default",le="+Inf"} 1
spark_cache_origin_fetch_seconds_sum{cache="default"} 0.05
spark_cache_origin_fetch_seconds_count{cache="default"} 1
# HELP spark_cache_l2_up Redis.
# TYPE spark_cache_l2_up gauge
spark_cache_l2_up{cache="default"} 1
`

// TestCheckFindsDrift is what makes the stack test able to fail: a metric
// nothing exports, a histogram without its suffix where one is needed, a
// label the series do not carry are each reported; the right names are not.
func TestCheckFindsDrift(t *testing.T) {
	e := exported{}
	if err := e.addScrape(strings.NewReader(exposition)); err != nil {
		t.Fatal(err)
	}
	good := []query{
		{Where: "hits", Expr: `sum by (layer) (rate(spark_cache_requests_total{result="hit",instance=~"$edge"}[5m]))`},
		{Where: "p95", Expr: `histogram_quantile(0.95, sum by (le) (rate(spark_cache_origin_fetch_seconds_bucket{le!=""}[5m])))`},
		{Where: "count", Expr: `rate(spark_cache_origin_fetch_seconds_count[5m]) / rate(spark_cache_origin_fetch_seconds_sum[5m])`},
		{Where: "record", Expr: `spark:cache_hit_ratio:rate5m < 0.9 and up == 1`},
	}
	if problems := e.check(good, map[string]bool{"spark:cache_hit_ratio:rate5m": true}); len(problems) > 0 {
		t.Errorf("problems with exported names: %v", problems)
	}
	bad := []query{
		{Where: "renamed", Expr: `rate(spark_cache_hits_total[5m])`},
		{Where: "label", Expr: `spark_cache_requests_total{tier="l1"}`},
		{Where: "count on gauge", Expr: `spark_cache_l2_up_count`},
		{Where: "unknown record", Expr: `spark:cache_hit_ratio:rate5m`},
		{Where: "syntax", Expr: `rate(spark_cache_requests_total[5m]`},
	}
	problems := e.check(bad, nil)
	if len(problems) != len(bad) {
		t.Fatalf("%d problems for %d bad queries: %v", len(problems), len(bad), problems)
	}
	for i, q := range bad {
		if !strings.HasPrefix(problems[i], q.Where+":") {
			t.Errorf("problem %d = %q, want one about %q", i, problems[i], q.Where)
		}
	}
}

// TestDashboardModel checks the dashboard's shape without a running stack:
// every query parses, every panel is on the datasource variable, panel ids
// are unique, and the plan's panels are there.
func TestDashboardModel(t *testing.T) {
	d, err := loadDashboard("grafana/spark.json")
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both are needed for a stable import", d.UID, d.Title)
	}
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasDatasourceVar = true
		}
	}
	if !hasDatasourceVar {
		t.Error("no datasource template variable: the dashboard would be tied to one Prometheus")
	}
	ids := map[int]string{}
	titles := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			titles[p.Title] = true
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" {
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if !strings.Contains(string(p.Datasource), "${datasource}") {
					t.Errorf("panel %q datasource %s, want the ${datasource} variable", p.Title, p.Datasource)
				}
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s: empty expression", p.Title, tg.RefID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, q := range d.queries() {
		if _, err := selectors(q.Expr); err != nil {
			t.Errorf("%s: %v", q.Where, err)
		}
	}
	for _, want := range []string{
		"Edge request rate by status", "Edge request P95", "Origin request rate by route", "Origin P95 by route",
		"Cache hit ratio by layer", "Origin fetch time (edge)", "Matching time", "WebSocket connections",
		"Message delivery time", "Slow-consumer disconnects", "Redis (L2) up", "L2 errors and breaker opens",
		"Database pool", "Photo variants",
	} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
	// The file is what Grafana's import takes: no __inputs placeholders.
	b, _ := os.ReadFile("grafana/spark.json")
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["__inputs"]; ok {
		t.Error("dashboard has __inputs: keep it importable as is, with the datasource variable")
	}
}
