package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// promtool returns promtool's path, failing the test when it is missing.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: scripts/test-deps.sh installs it (Debian package prometheus)")
	}
	return p
}

// TestPromtoolRules runs promtool check rules on every rule file and
// promtool test rules on every rule test file.
func TestPromtoolRules(t *testing.T) {
	pt := promtool(t)
	rules, _ := filepath.Glob("prometheus/*.rules.yml")
	tests, _ := filepath.Glob("prometheus/*.test.yml")
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("no rule files (%v) or rule tests (%v)", rules, tests)
	}
	if out, err := exec.Command(pt, append([]string{"check", "rules"}, rules...)...).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := exec.Command(pt, append([]string{"test", "rules"}, tests...)...).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// TestPromtoolTestsBindThresholds changes one threshold (message delivery
// P99 50 ms -> 500 ms) in a copy of the rules: their unit tests must fail,
// or they would not be testing the alert.
func TestPromtoolTestsBindThresholds(t *testing.T) {
	pt := promtool(t)
	dir := t.TempDir()
	rules, err := os.ReadFile("prometheus/spark.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	const from = "(rate(spark_message_delivery_duration_seconds_bucket[5m]))) > 0.05"
	if !bytes.Contains(rules, []byte(from)) {
		t.Fatalf("spark.rules.yml has no %q to change", from)
	}
	rules = bytes.Replace(rules, []byte(from), []byte("(rate(spark_message_delivery_duration_seconds_bucket[5m]))) > 0.5"), 1)
	tests, err := os.ReadFile("prometheus/spark.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"spark.rules.yml": rules, "spark.test.yml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(pt, "test", "rules", "spark.test.yml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("promtool test rules passed with the delivery threshold at 500 ms:\n%s", out)
	}
	if !bytes.Contains(out, []byte("SparkMessageDeliverySlow")) {
		t.Errorf("the failure is not about SparkMessageDeliverySlow:\n%s", out)
	}
}
