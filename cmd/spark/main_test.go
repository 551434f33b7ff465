package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runMainEnv, set to 1 in the environment, makes the test binary run the
// spark command itself with its arguments (TestHelpSaysSpark starts it so).
const runMainEnv = "SPARK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// `spark --help` and `spark help` name the binary spark and open with what
// it runs; the usage lines say spark, never caddy. (Only the Examples block
// of Caddy's root command, a literal Caddy gives no way to replace, and the
// link to Caddy's documentation still say caddy.)
func TestHelpSaysSpark(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("spark %s: %v\n%s", args[0], err, out)
		}
		help := string(out)
		for _, want := range []string{
			"Spark runs the Spark dating app's edge and origin from one binary",
			"spark run --config Caddyfile",
			"Usage:\n  spark [command]",
			"\n  origin ",
			"\n  loadtest ",
			"help for spark",
			`Use "spark [command] --help"`,
		} {
			if !strings.Contains(help, want) {
				t.Errorf("spark %s lacks %q:\n%s", args[0], want, help)
			}
		}
		for _, line := range strings.Split(help, "\n") {
			if strings.Contains(line, "caddy ") && !strings.HasPrefix(line, "  $ caddy ") {
				t.Errorf("spark %s says caddy: %q", args[0], line)
			}
		}
	}
}
