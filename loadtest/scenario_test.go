package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinScenariosParse(t *testing.T) {
	names := BuiltinScenarios()
	if len(names) < 2 {
		t.Fatalf("built-in scenarios = %v, want dating and profiles at least", names)
	}
	for _, n := range names {
		sc, err := LoadScenario(n)
		if err != nil {
			t.Fatalf("LoadScenario(%q): %v", n, err)
		}
		if len(sc.Flows) == 0 || len(sc.Endpoints) == 0 || sc.MeanRequestsPerFlow() < 1 {
			t.Errorf("%s: empty scenario %+v", n, sc)
		}
	}
}

func TestDatingScenarioShape(t *testing.T) {
	sc, err := LoadScenario("dating")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"own_profile", "suggestions", "profile", "swipe", "location", "conversations", "messages", "send_message"} {
		if sc.Endpoints[want] == nil {
			t.Errorf("dating scenario lacks endpoint %q", want)
		}
	}
	if len(sc.Setup) != 1 || sc.Setup[0].Name != "like_partner" {
		t.Errorf("setup = %v, want [like_partner]", sc.Setup)
	}
	if sc.Think.Min != 200*time.Millisecond || sc.Think.Max != 1500*time.Millisecond {
		t.Errorf("think = %+v", sc.Think)
	}
	var browse *Flow
	for _, f := range sc.Flows {
		if f.Name == "browse" {
			browse = f
		}
	}
	if browse == nil || browse.Requests() != 5 {
		t.Fatalf("browse flow = %+v, want 5 requests", browse)
	}
	if browse.Steps[0].Endpoint.Name != "profile" || browse.Steps[0].Repeat != 3 {
		t.Errorf("browse step 1 = %+v", browse.Steps[0])
	}
	// Every read the checker can judge is checked, every write recorded.
	for name, check := range map[string]string{"suggestions": CheckDeck, "swipe": CheckSwipe, "block": CheckBlock,
		"own_profile": CheckProfile, "profile": CheckProfile, "card_profile": CheckProfile, "update_profile": CheckProfileUpdate,
		"conversations": CheckInbox, "messages": CheckMessages, "send_message": CheckSend} {
		if ep := sc.Endpoints[name]; ep == nil || ep.Check != check {
			t.Errorf("endpoint %s: check %q, want %q", name, ep.Check, check)
		}
	}
}

func TestScenarioMinimalDefaults(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "good_minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ep := sc.Endpoints["matches"]
	if ep.Method != "GET" || ep.Line != 3 || sc.ZipfS != 1.1 {
		t.Errorf("defaults: method %q line %d zipf %g", ep.Method, ep.Line, sc.ZipfS)
	}
	if sc.MeanRequestsPerFlow() != 1 {
		t.Errorf("mean requests = %g", sc.MeanRequestsPerFlow())
	}
}

func TestLoadScenarioErrors(t *testing.T) {
	if _, err := LoadScenario("no-such-builtin"); err == nil || !strings.Contains(err.Error(), "dating") {
		t.Errorf("unknown built-in: %v (should list the built-ins)", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := LoadScenario(missing); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestParseThinkRange(t *testing.T) {
	good := map[string]ThinkRange{"1s": {time.Second, time.Second}, "300ms..2s": {300 * time.Millisecond, 2 * time.Second},
		" 0s .. 0s ": {}}
	for in, want := range good {
		got, err := ParseThinkRange(in)
		if err != nil || got != want {
			t.Errorf("ParseThinkRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "2s..1s", "-1s", "1s..x"} {
		if _, err := ParseThinkRange(in); err == nil {
			t.Errorf("ParseThinkRange(%q): no error", in)
		}
	}
}

func TestMeanFlowThink(t *testing.T) {
	sc := mustScenario(t, `
name: t
think: 1s..3s
endpoints: {a: {path: /a}, b: {path: /b}}
flows:
  - {name: one, weight: 1, steps: [a]}
  - {name: three, weight: 3, steps: [a, {endpoint: b, repeat: 2, think: 100ms}, a]}
`)
	// one: no pauses; three: 2 x 100ms + 2s. Weighted: 3/4 x 2.2s.
	if got, want := sc.MeanFlowThink(), 1650*time.Millisecond; got != want {
		t.Errorf("MeanFlowThink = %s, want %s", got, want)
	}
	if got := sc.MeanRequestsPerFlow(); got != 3.25 {
		t.Errorf("MeanRequestsPerFlow = %g, want 3.25", got)
	}
}

func TestBodyFile(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "upload.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(sc.Endpoints["upload"].BodyBytes); got != "hello-bytes" {
		t.Errorf("body_file read %q", got)
	}
	photos, err := LoadScenario("photos")
	if err != nil {
		t.Fatal(err)
	}
	if b := photos.Endpoints["upload_photo"].BodyBytes; len(b) < 1000 || b[0] != 0xFF || b[1] != 0xD8 {
		t.Errorf("built-in photos scenario: upload body is not the embedded JPEG (%d bytes)", len(b))
	}
	_, err = LoadScenario(filepath.Join("testdata", "bad_body_file.yaml"))
	for _, want := range []string{"body and body_file exclude each other", `endpoint "missing": body_file: open nope.bin`, `endpoint "get": GET requests carry no body`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	data, _ := os.ReadFile(filepath.Join("testdata", "upload.yaml"))
	if _, err := parseScenario("inline.yaml", data, nil); err == nil || !strings.Contains(err.Error(), "only scenarios loaded from a file") {
		t.Errorf("inline body_file: %v", err)
	}
}
