// Package loadtest generates dating-app traffic against a Spark edge or
// origin and reports latency, throughput, errors and cache effectiveness.
//
// It speaks HTTP only: it never imports the origin or the edge plugins. Tokens
// are minted here from the shared HS256 secret, and everything the runner
// knows about the API comes from scenario files (see scenarios/).
package loadtest

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

//go:embed scenarios/*.yaml scenarios/*.jpg
var builtinScenarios embed.FS

// Scenario is a parsed and validated traffic mix: the endpoints virtual users
// call, the flows (sequences of endpoint calls) they run and how often.
type Scenario struct {
	// Name identifies the scenario in reports.
	Name string
	// Description says what the mix models.
	Description string
	// Users is the number of virtual users (user ids 1..Users) unless the
	// command line overrides it.
	Users int
	// ZipfS is the exponent of the popularity distribution behind
	// {{.Popular}} (s > 1; larger is more skewed).
	ZipfS float64
	// Think is the default pause between two steps of a flow.
	Think ThinkRange
	// Setup lists endpoints every virtual user calls once before measuring.
	Setup []*Endpoint
	// Endpoints are the requests the flows use, by name.
	Endpoints map[string]*Endpoint
	// Flows are what an arrival runs, chosen by weight.
	Flows []*Flow
}

// Endpoint is one templated request. Path, body and header values are Go
// text/templates executed against the calling virtual user (see Vars).
type Endpoint struct {
	// Name keys the endpoint's statistics.
	Name string
	// Method is the HTTP method.
	Method string
	// Path is the request path and query (a template).
	Path *template.Template
	// Body is the request body (a template), empty for none.
	Body *template.Template
	// BodyBytes is a fixed body read from the scenario's body_file (e.g. a
	// photo to upload); it takes the place of Body.
	BodyBytes []byte
	// Headers are extra request headers (templates); an empty result omits
	// the header.
	Headers map[string]*template.Template
	// Expect lists the statuses that count as success; empty means any 2xx
	// or 304.
	Expect []int
	// Capture maps a virtual-user variable to a JSON path in the response
	// ("suggestions[].id"); the values are kept for {{.Pick "name"}}.
	Capture map[string]string
	// Anonymous requests carry no Authorization header (public content).
	Anonymous bool
	// Check names what the correctness checker does with the response (a
	// Check* constant: record a write, or check a read against the
	// writes acknowledged before it was sent); empty for nothing.
	Check string
	// Line is where the endpoint is defined in the scenario file.
	Line int
}

// Flow is a sequence of steps a virtual user runs for one arrival.
type Flow struct {
	// Name identifies the flow in reports.
	Name string
	// Weight is the flow's relative frequency among arrivals.
	Weight float64
	// Steps run in order.
	Steps []Step
}

// Step calls an endpoint Repeat times, pausing Think before each call except
// the flow's first.
type Step struct {
	// Endpoint is the request to make.
	Endpoint *Endpoint
	// Repeat is how many times to call it (at least 1).
	Repeat int
	// Think overrides the scenario's default pause when set.
	Think *ThinkRange
}

// Requests returns the number of requests the flow makes.
func (f *Flow) Requests() int {
	n := 0
	for _, s := range f.Steps {
		n += s.Repeat
	}
	return n
}

// MeanRequestsPerFlow is the weighted mean number of requests per arrival.
func (s *Scenario) MeanRequestsPerFlow() float64 {
	var w, n float64
	for _, f := range s.Flows {
		w += f.Weight
		n += f.Weight * float64(f.Requests())
	}
	if w == 0 {
		return 0
	}
	return n / w
}

// MeanFlowThink is the weighted mean of the think time a flow spends
// between its requests.
func (s *Scenario) MeanFlowThink() time.Duration {
	var w, total float64
	for _, f := range s.Flows {
		var d time.Duration
		first := true
		for _, st := range f.Steps {
			t := s.Think
			if st.Think != nil {
				t = *st.Think
			}
			n := st.Repeat
			if first {
				n--
				first = false
			}
			d += time.Duration(n) * (t.Min + t.Max) / 2
		}
		w += f.Weight
		total += f.Weight * float64(d)
	}
	if w == 0 {
		return 0
	}
	return time.Duration(total / w)
}

// ThinkRange is a uniformly distributed pause between Min and Max. In YAML it
// is written "1s" or "300ms..2s".
type ThinkRange struct {
	// Min is the shortest pause.
	Min time.Duration
	// Max is the longest pause.
	Max time.Duration
}

// UnmarshalYAML parses "1s" or "300ms..2s".
func (t *ThinkRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n.Line, "think time must be a duration like \"1s\" or a range like \"300ms..2s\"")
	}
	r, err := ParseThinkRange(n.Value)
	if err != nil {
		return typeError(n.Line, err.Error())
	}
	*t = r
	return nil
}

// ParseThinkRange parses "1s" or "300ms..2s".
func ParseThinkRange(v string) (ThinkRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(v), "..")
	min, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return ThinkRange{}, fmt.Errorf("think time %q: %w", v, err)
	}
	max := min
	if isRange {
		if max, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return ThinkRange{}, fmt.Errorf("think time %q: %w", v, err)
		}
	}
	if min < 0 || max < min {
		return ThinkRange{}, fmt.Errorf("think time %q: need 0 <= min <= max", v)
	}
	return ThinkRange{Min: min, Max: max}, nil
}

// BuiltinScenarios lists the names of the scenarios shipped in the binary.
func BuiltinScenarios() []string {
	ents, err := fs.ReadDir(builtinScenarios, "scenarios")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	return out
}

// LoadScenario loads a built-in scenario by name ("dating") or a file by
// path.
func LoadScenario(nameOrPath string) (*Scenario, error) {
	if !strings.ContainsAny(nameOrPath, "/\\") && !strings.HasSuffix(nameOrPath, ".yaml") && !strings.HasSuffix(nameOrPath, ".yml") {
		data, err := builtinScenarios.ReadFile("scenarios/" + nameOrPath + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("scenario %q: not built in (have %s) and not a file path", nameOrPath, strings.Join(BuiltinScenarios(), ", "))
		}
		sub, err := fs.Sub(builtinScenarios, "scenarios")
		if err != nil {
			return nil, fmt.Errorf("scenario %q: %w", nameOrPath, err)
		}
		return parseScenario(nameOrPath+".yaml", data, sub)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return parseScenario(filepath.Base(nameOrPath), data, os.DirFS(filepath.Dir(nameOrPath)))
}
