package loadtest

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestBadScenarios(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"bad_unknown_field.yaml", []string{"line 5", "field methd not found"}},
		{"bad_weight.yaml", []string{`line 6: flow "zero": weight must be in (0, 1e6], got 0`,
			`line 9: flow "missing": weight is required`, `line 11: flow "negative": weight must be`}},
		{"bad_endpoint.yaml", []string{`line 9: flow "open": unknown endpoint "suggestion" (did you mean "suggestions"?)`,
			`line 10: flow "open": unknown endpoint "profile"`}},
		{"bad_template.yaml", []string{`line 3: endpoint "profile": path: template:`, "Nobody",
			`line 5: endpoint "unclosed": body: template:`}},
		{"bad_misc.yaml", []string{"line 2: think time", "lower_snake_case", `unknown method "FETCH"`,
			"path must start with /", "expect: 42 is not an HTTP status", "Authorization is set from",
			"GET requests carry no body", `line 18: step: unknown field "repeats"`}},
		{"bad_syntax.yaml", []string{"scenario bad_syntax.yaml: yaml: line"}},
		{"bad_check.yaml", []string{`line 3: endpoint "matches": unknown check "nonsense"; known: block, deck, inbox`}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := LoadScenario(filepath.Join("testdata", c.file))
			if err == nil {
				t.Fatal("no error for a bad file")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestScenarioErrorsInline(t *testing.T) {
	cases := map[string]string{
		"name: x\nflows: []\n": "no endpoints",
		"endpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: [a]}]\n":                                            "name is required",
		"name: x\nendpoints: {a: {path: /a}}\n":                                                                              "no flows",
		"name: x\nendpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: []}]\n":                                    `flow "f" has no steps`,
		"name: x\nendpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: [a]}, {name: f, weight: 1, steps: [a]}]\n": `flow "f" defined twice`,
		"name: x\npopularity: {zipf_s: 0.5}\nendpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: [a]}]\n":        "zipf_s must be > 1",
		"name: x\nsetup: [nope]\nendpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: [a]}]\n":                    `setup: unknown endpoint "nope"`,
		"name: x\nendpoints: {a: {path: /a, capture: {v: \"a..b\"}}}\nflows: [{name: f, weight: 1, steps: [a]}]\n":           "is not like",
		"name: x\nendpoints: {a: {path: /a}}\nflows: [{name: f, weight: 1, steps: [{endpoint: a, repeat: -1}]}]\n":           "repeat must be in 1..1000",
	}
	for doc, want := range cases {
		_, err := parseScenario("inline.yaml", []byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseScenario(%q) = %v, want error containing %q", doc, err, want)
		}
	}
}
