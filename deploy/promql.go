package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// query is one PromQL expression found in a deploy file, with where it is.
type query struct {
	Where string // "dashboard panel \"Request rate\" target A", "rule SparkCacheRedisDown"
	Expr  string
}

// selector is one metric a query selects and the label names it matches on.
type selector struct {
	Metric string
	Labels []string // label names of its matchers, __name__ excepted
}

// promQL is the parser the checks use: Prometheus' own, default functions.
var promQL = parser.NewParser(parser.Options{})

// grafanaVars are Grafana's built-in interval variables, which stand where
// PromQL wants a duration; each is replaced by one before parsing.
var grafanaVars = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?`)

// expandGrafana makes a dashboard expression PromQL: interval variables
// become 5m. Other template variables ($edge) only appear inside quoted
// label values, where the parser takes them as text.
func expandGrafana(expr string) string {
	return grafanaVars.ReplaceAllString(expr, "5m")
}

// selectors parses expr and returns the metrics it selects. A selector
// without a literal metric name ({job="x"}, {__name__=~"..."}) is an error:
// it could not be checked against what the processes export.
func selectors(expr string) ([]selector, error) {
	e, err := promQL.ParseExpr(expandGrafana(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var out []selector
	var inspectErr error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if s.Metric == "" && m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Labels = append(s.Labels, m.Name)
		}
		if s.Metric == "" {
			inspectErr = fmt.Errorf("selector %s in %q names no metric", vs, expr)
			return inspectErr
		}
		out = append(out, s)
		return nil
	})
	if inspectErr != nil {
		return nil, inspectErr
	}
	return out, nil
}

// exported is what a set of scraped processes expose: each series name
// (histogram families expanded to _bucket, _sum and _count) with the label
// names its samples carry.
type exported map[string]map[string]bool

// addScrape reads a Prometheus text exposition into e.
func (e exported) addScrape(r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return fmt.Errorf("parse metrics exposition: %w", err)
	}
	for name, f := range families {
		names := []string{name}
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		case "SUMMARY":
			names = append(names, name+"_sum", name+"_count")
		}
		for _, n := range names {
			if e[n] == nil {
				e[n] = map[string]bool{}
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					e[n][l.GetName()] = true
				}
			}
		}
		if f.GetType().String() == "HISTOGRAM" {
			e[name+"_bucket"]["le"] = true
		}
		if f.GetType().String() == "SUMMARY" {
			e[name]["quantile"] = true
		}
	}
	return nil
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true}

// synthetic are the series Prometheus makes itself for each target or
// rule: no process exports them, every Prometheus has them.
var synthetic = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// check returns what is wrong with qs against e, whose recording rules are
// records (their output labels are not checked): a metric nothing exports,
// or a label matcher on a label the metric's series never carry. A query
// that does not parse is a problem too.
func (e exported) check(qs []query, records map[string]bool) []string {
	var problems []string
	for _, q := range qs {
		sels, err := selectors(q.Expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", q.Where, err))
			continue
		}
		for _, s := range sels {
			if records[s.Metric] || synthetic[s.Metric] {
				continue
			}
			have, ok := e[s.Metric]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: metric %s is exported by neither the edge nor the origin", q.Where, s.Metric))
				continue
			}
			for _, l := range s.Labels {
				if !have[l] && !targetLabels[l] {
					problems = append(problems, fmt.Sprintf("%s: metric %s has no label %q (it has %s)", q.Where, s.Metric, l, sortedKeys(have)))
				}
			}
		}
	}
	return problems
}

func sortedKeys(m map[string]bool) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// dashboard is the part of a Grafana dashboard JSON model the checks read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// loadDashboard reads a dashboard JSON model.
func loadDashboard(path string) (dashboard, error) {
	var d dashboard
	b, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("read dashboard: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("decode dashboard %s: %w", path, err)
	}
	return d, nil
}

// labelValuesQuery is a Grafana Prometheus variable query naming a metric.
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// queries returns every expression of the dashboard: each panel target
// (rows' panels included) and each query variable's metric.
func (d dashboard) queries() []query {
	var qs []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				qs = append(qs, query{Where: fmt.Sprintf("panel %q target %s", p.Title, t.RefID), Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				qs = append(qs, query{Where: "variable " + v.Name, Expr: "unreadable variable query " + string(v.Query)})
				continue
			}
			q = obj.Query
		}
		if m := labelValuesQuery.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		qs = append(qs, query{Where: "variable " + v.Name, Expr: q})
	}
	return qs
}

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// loadRules reads a rule file's expressions and the names it records.
func loadRules(path string) (qs []query, records map[string]bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read rules: %w", err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("decode rules %s: %w", path, err)
	}
	records = map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if r.Record != "" {
				name = r.Record
				records[r.Record] = true
			}
			qs = append(qs, query{Where: fmt.Sprintf("%s: rule %s", path, name), Expr: r.Expr})
		}
	}
	return qs, records, nil
}

// ruleTestFile is a promtool rule unit test file.
type ruleTestFile struct {
	Tests []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		PromQLExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// loadRuleTests returns the series a promtool test file feeds (as
// selectors, so they are checked like queries) and its PromQL tests.
func loadRuleTests(path string) ([]query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule tests: %w", err)
	}
	var f ruleTestFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode rule tests %s: %w", path, err)
	}
	var qs []query
	for i, tc := range f.Tests {
		for _, s := range tc.InputSeries {
			qs = append(qs, query{Where: fmt.Sprintf("%s: test %d input series", path, i), Expr: s.Series})
		}
		for _, e := range tc.PromQLExprTests {
			qs = append(qs, query{Where: fmt.Sprintf("%s: test %d promql_expr_test", path, i), Expr: e.Expr})
		}
	}
	return qs, nil
}
