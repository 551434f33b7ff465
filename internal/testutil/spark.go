package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SparkBinary returns the spark binary end-to-end tests run: $SPARK_BIN when
// set (make targets point it at bin/spark), else one built from ./cmd/spark
// once per test process (removed with the OS's temp files).
func SparkBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("SPARK_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatalf("SPARK_BIN=%q: %v", bin, err)
		}
		return abs
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "spark-e2e-bin")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "spark")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", build.bin, "./cmd/spark")
		cmd.Dir = ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build spark (needs libvips-dev, see scripts/build-deps.sh): %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// build is the binary SparkBinary built for this test process.
var build struct {
	once sync.Once
	bin  string
	err  error
}

// ModuleRoot is the directory of the spark module (where the Caddyfile is):
// the nearest directory holding go.mod at or above the working directory
// (a test's package directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("find the module root: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("find the module root: no go.mod at or above %s", wd)
		}
	}
}

// CaddyfileWithRedis writes the repository's Caddyfile with a redis block
// added to its spark_cache (address $SPARK_REDIS, key prefix
// $SPARK_REDIS_PREFIX, read by the edge at start-up), so edges started on it
// share one second tier and one purge channel, and returns its path.
func CaddyfileWithRedis(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	// The repository Caddyfile's cache block opens with its matcher.
	const anchor = "\tspark_cache @routed {\n"
	if !bytes.Contains(b, []byte(anchor)) {
		t.Fatalf("the repository's Caddyfile has no %q line to add a redis block to", strings.TrimSpace(anchor))
	}
	withRedis := bytes.Replace(b, []byte(anchor), []byte(anchor+
		"\t\tredis {$SPARK_REDIS} {\n\t\t\tkey_prefix {$SPARK_REDIS_PREFIX}\n\t\t}\n"), 1)
	p := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(p, withRedis, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
