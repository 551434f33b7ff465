package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"text/template"

	yaml "go.yaml.in/yaml/v3"
)

// The YAML shape. Decoded with KnownFields, so a misspelt key is an error
// with its line number.
type rawScenario struct {
	Name        string                  `yaml:"name"`
	Description string                  `yaml:"description"`
	Users       int                     `yaml:"users"`
	Popularity  rawPopularity           `yaml:"popularity"`
	Think       *ThinkRange             `yaml:"think"`
	Setup       []string                `yaml:"setup"`
	Endpoints   map[string]*rawEndpoint `yaml:"endpoints"`
	Flows       []rawFlow               `yaml:"flows"`
	// decodeFailed: some values did not decode, so empty lists may be
	// the decoder's doing rather than the author's.
	decodeFailed bool
}

type rawPopularity struct {
	ZipfS float64 `yaml:"zipf_s"`
}

type rawEndpoint struct {
	Method    string            `yaml:"method"`
	Path      string            `yaml:"path"`
	Body      string            `yaml:"body"`
	BodyFile  string            `yaml:"body_file"` // read relative to the scenario file
	Headers   map[string]string `yaml:"headers"`
	Expect    []int             `yaml:"expect"`
	Capture   map[string]string `yaml:"capture"`
	Anonymous bool              `yaml:"anonymous"`
	Check     string            `yaml:"check"`
}

type rawFlow struct {
	Name   string    `yaml:"name"`
	Weight *float64  `yaml:"weight"`
	Steps  []rawStep `yaml:"steps"`
}

// rawStep is "endpoint_name" or {endpoint: name, repeat: n, think: "1s"}.
type rawStep struct {
	Endpoint string
	Repeat   int
	Think    *ThinkRange
	Line     int
}

// UnmarshalYAML reads a step written as a name or as a mapping.
func (s *rawStep) UnmarshalYAML(n *yaml.Node) error {
	s.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		s.Endpoint = n.Value
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var err error
			switch k.Value {
			case "endpoint":
				err = v.Decode(&s.Endpoint)
			case "repeat":
				err = v.Decode(&s.Repeat)
			case "think":
				var t ThinkRange
				err = v.Decode(&t)
				s.Think = &t
			default:
				return typeError(k.Line, fmt.Sprintf("step: unknown field %q (want endpoint, repeat, think)", k.Value))
			}
			if err != nil {
				return typeError(v.Line, fmt.Sprintf("step field %s: %v", k.Value, err))
			}
		}
		return nil
	}
	return typeError(n.Line, "a step is an endpoint name or a mapping {endpoint, repeat, think}")
}

// typeError is a decoding error that lets the YAML decoder go on and report
// the file's other problems too.
func typeError(line int, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", line, msg)}}
}

// parseScenario parses and validates a scenario from YAML; name is used in
// error messages (usually the file name), and body_file paths are read from
// fsys (nil: none may be used).
func parseScenario(name string, data []byte, fsys fs.FS) (*Scenario, error) {
	var raw rawScenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// Type errors (unknown fields, wrong types, bad think times) leave the
	// rest decoded: report them together with the validation errors.
	var typeErr *yaml.TypeError
	if err := dec.Decode(&raw); err != nil && !errors.As(err, &typeErr) {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	// Line numbers of endpoints and flows, for validation messages.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	lines := keyLines(&root)
	raw.decodeFailed = typeErr != nil
	sc, err := raw.build(lines, fsys)
	if typeErr != nil {
		var errs []error
		for _, e := range typeErr.Errors {
			errs = append(errs, errors.New(e))
		}
		err = errors.Join(append(errs, err)...)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return sc, nil
}

// keyLines maps "endpoints.NAME" and "flows.N" to their line numbers.
func keyLines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		out[k.Value] = k.Line
		switch {
		case k.Value == "endpoints" && v.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				out["endpoints."+v.Content[j].Value] = v.Content[j].Line
			}
		case k.Value == "flows" && v.Kind == yaml.SequenceNode:
			for j, f := range v.Content {
				out[fmt.Sprintf("flows.%d", j)] = f.Line
			}
		}
	}
	return out
}

var (
	validMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
		http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}
	namePattern    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	capturePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\])?)*$`)
)

func (r *rawScenario) build(lines map[string]int, fsys fs.FS) (*Scenario, error) {
	var errs []error
	bad := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, errors.New(msg))
	}
	sc := &Scenario{Name: r.Name, Description: r.Description, Users: r.Users, ZipfS: r.Popularity.ZipfS,
		Endpoints: map[string]*Endpoint{}}
	if sc.Name == "" {
		bad(0, "name is required")
	}
	if sc.Users < 0 {
		bad(lines["users"], "users must be positive, got %d", sc.Users)
	}
	if sc.ZipfS == 0 {
		sc.ZipfS = 1.1
	}
	if sc.ZipfS <= 1 {
		bad(lines["popularity"], "popularity.zipf_s must be > 1, got %g", sc.ZipfS)
	}
	if r.Think != nil {
		sc.Think = *r.Think
	}
	if len(r.Endpoints) == 0 {
		bad(0, "no endpoints: define at least one under endpoints:")
	}
	names := make([]string, 0, len(r.Endpoints))
	for n := range r.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ep, err := buildEndpoint(n, r.Endpoints[n], lines["endpoints."+n], fsys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc.Endpoints[n] = ep
	}
	for _, n := range r.Setup {
		ep, ok := sc.Endpoints[n]
		if !ok {
			bad(lines["setup"], "setup: unknown endpoint %q%s", n, suggest(n, names))
			continue
		}
		sc.Setup = append(sc.Setup, ep)
	}
	if len(r.Flows) == 0 {
		bad(0, "no flows: define at least one under flows:")
	}
	seen := map[string]bool{}
	for i, rf := range r.Flows {
		line := lines[fmt.Sprintf("flows.%d", i)]
		f := &Flow{Name: rf.Name}
		if f.Name == "" {
			bad(line, "flow %d has no name", i+1)
		} else if seen[f.Name] {
			bad(line, "flow %q defined twice", f.Name)
		}
		seen[f.Name] = true
		switch {
		case rf.Weight == nil:
			bad(line, "flow %q: weight is required", f.Name)
		case *rf.Weight <= 0 || *rf.Weight > 1e6:
			bad(line, "flow %q: weight must be in (0, 1e6], got %g", f.Name, *rf.Weight)
		default:
			f.Weight = *rf.Weight
		}
		if len(rf.Steps) == 0 && !r.decodeFailed {
			bad(line, "flow %q has no steps", f.Name)
		}
		for _, rs := range rf.Steps {
			ep, ok := sc.Endpoints[rs.Endpoint]
			if !ok {
				if _, defined := r.Endpoints[rs.Endpoint]; !defined {
					bad(rs.Line, "flow %q: unknown endpoint %q%s", f.Name, rs.Endpoint, suggest(rs.Endpoint, names))
				}
				continue
			}
			st := Step{Endpoint: ep, Repeat: rs.Repeat, Think: rs.Think}
			if st.Repeat == 0 {
				st.Repeat = 1
			}
			if st.Repeat < 0 || st.Repeat > 1000 {
				bad(rs.Line, "flow %q: repeat must be in 1..1000, got %d", f.Name, rs.Repeat)
			}
			f.Steps = append(f.Steps, st)
		}
		sc.Flows = append(sc.Flows, f)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sc, nil
}

func buildEndpoint(name string, r *rawEndpoint, line int, fsys fs.FS) (*Endpoint, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: endpoint %q: %s", line, name, fmt.Sprintf(format, args...)))
	}
	if !namePattern.MatchString(name) {
		bad("name must be lower_snake_case")
	}
	if r == nil {
		bad("empty definition: need at least a path")
		return nil, errors.Join(errs...)
	}
	ep := &Endpoint{Name: name, Method: strings.ToUpper(r.Method), Line: line, Expect: r.Expect,
		Capture: r.Capture, Anonymous: r.Anonymous, Check: r.Check, Headers: map[string]*template.Template{}}
	if !validCheck(r.Check) {
		bad("unknown check %q; known: %s", r.Check, checkList())
	}
	if ep.Method == "" {
		ep.Method = http.MethodGet
	}
	if !validMethods[ep.Method] {
		bad("unknown method %q", r.Method)
	}
	// A path is absolute, or a template that yields one (a captured URL).
	if !strings.HasPrefix(r.Path, "/") && !strings.HasPrefix(r.Path, "{{") {
		bad("path must start with /, got %q", r.Path)
	}
	var err error
	if ep.Path, err = parseTemplate(name+".path", r.Path); err != nil {
		bad("path: %v", err)
	}
	if r.Body != "" {
		if ep.Method == http.MethodGet || ep.Method == http.MethodHead {
			bad("%s requests carry no body", ep.Method)
		}
		if ep.Body, err = parseTemplate(name+".body", r.Body); err != nil {
			bad("body: %v", err)
		}
	}
	if r.BodyFile != "" {
		switch {
		case r.Body != "":
			bad("body and body_file exclude each other")
		case ep.Method == http.MethodGet || ep.Method == http.MethodHead:
			bad("%s requests carry no body", ep.Method)
		case fsys == nil:
			bad("body_file %q: only scenarios loaded from a file or built in can read files", r.BodyFile)
		default:
			if ep.BodyBytes, err = fs.ReadFile(fsys, r.BodyFile); err != nil {
				bad("body_file: %v", err)
			}
		}
	}
	for h, v := range r.Headers {
		if http.CanonicalHeaderKey(h) == "Authorization" {
			bad("headers: Authorization is set from the virtual user's token")
		}
		if ep.Headers[h], err = parseTemplate(name+".headers."+h, v); err != nil {
			bad("header %s: %v", h, err)
		}
	}
	for _, s := range ep.Expect {
		if s < 100 || s > 599 {
			bad("expect: %d is not an HTTP status", s)
		}
	}
	for v, p := range ep.Capture {
		if !namePattern.MatchString(v) {
			bad("capture: variable %q must be lower_snake_case", v)
		}
		if !capturePattern.MatchString(p) {
			bad("capture %s: path %q is not like \"items[].id\"", v, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ep, nil
}

// parseTemplate parses a text/template, rejecting fields Vars does not have
// by executing it once against a probe.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if err := t.Execute(&bytes.Buffer{}, probeVars()); err != nil && !errors.Is(err, ErrSkip) {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}

// suggest returns ` (did you mean "x"?)` for the closest known name.
func suggest(n string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := editDistance(n, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
