// Package testphotos finds the shared test data (real photos with their
// licences) for tests in any package of the module.
package testphotos

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spark-edge/spark/internal/testutil"
)

// Dir returns the shared test data directory: $SPARK_TESTDATA, or
// shared/testdata beside the module's root (CI puts shared/ next to the
// clone). It fails the test, saying how to fix it, when the photos are not
// there.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SPARK_TESTDATA")
	if dir == "" {
		dir = filepath.Join(testutil.ModuleRoot(t), "..", "shared", "testdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "images")); err != nil {
		t.Fatalf("test photos not found (set SPARK_TESTDATA to the shared testdata directory): %v", err)
	}
	return dir
}

// Read returns the file name of the shared test data's kind directory
// (images, bombs), failing the test when it cannot be read.
func Read(t testing.TB, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), kind, name))
	if err != nil {
		t.Fatalf("read test data %s/%s: %v", kind, name, err)
	}
	return b
}
