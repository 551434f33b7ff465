package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitKeys reads a unit file's Key=value lines (every value of a key).
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not Key=value", path, line)
		}
		keys[k] = append(keys[k], v)
	}
	return keys
}

// TestSystemdUnits checks the units with systemd's own tools: verify
// (syntax, unknown keys, executables; any message fails the test) and
// security (exposure at most 2.5 of 10), on copies whose binary path is a
// stub that exists; then the hardening and limits the plan asks for.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (Debian: apt-get install systemd): the units cannot be verified")
	}
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 2 {
		t.Fatalf("want spark-edge.service and spark-origin.service under systemd/, have %v", units)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "spark")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("/usr/local/bin/spark ")) {
			t.Errorf("%s does not run /usr/local/bin/spark", u)
		}
		c := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(c, bytes.ReplaceAll(b, []byte("/usr/local/bin/spark"), []byte(stub)), 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, copies...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, c := range copies {
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=25", "--no-pager", c).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.5 (%v):\n%s", filepath.Base(c), err, out)
		}
	}

	for _, u := range units {
		k := unitKeys(t, u)
		has := func(key, want string) {
			t.Helper()
			for _, v := range k[key] {
				if strings.Contains(" "+v+" ", " "+want+" ") || v == want {
					return
				}
			}
			t.Errorf("%s: no %s=%s (has %q)", u, key, want, k[key])
		}
		has("DynamicUser", "yes")
		has("ProtectSystem", "strict")
		has("NoNewPrivileges", "yes")
		has("PrivateTmp", "yes")
		has("Environment", "MALLOC_ARENA_MAX=2")
		for _, key := range []string{"LimitNOFILE", "TasksMax", "MemoryMax", "EnvironmentFile", "StateDirectory"} {
			if len(k[key]) == 0 {
				t.Errorf("%s: no %s", u, key)
			}
		}
		for _, f := range k["EnvironmentFile"] {
			if strings.HasPrefix(f, "-") {
				t.Errorf("%s: EnvironmentFile=%s is optional: the service would start without its secrets", u, f)
			}
		}
	}
	edge := unitKeys(t, "systemd/spark-edge.service")
	if r := edge["ExecReload"]; len(r) != 1 || !strings.Contains(r[0], "/usr/local/bin/spark reload --config /etc/spark/Caddyfile") {
		t.Errorf("spark-edge.service: ExecReload %q, want spark reload of the Caddyfile ExecStart runs", r)
	}
	if s := edge["ExecStart"]; len(s) != 1 || !strings.Contains(s[0], "run --config /etc/spark/Caddyfile") {
		t.Errorf("spark-edge.service: ExecStart %q", s)
	}
}
