// Package testphotos finds the shared test data (real photos with their
// licences) for tests in any package of the module.
package testphotos

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared test data directory: $SPARK_TESTDATA, or
// shared/testdata beside the module's root (CI puts shared/ next to the
// clone). It fails the test, saying how to fix it, when the photos are not
// there.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SPARK_TESTDATA")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("find the module root: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "testdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "images")); err != nil {
		t.Fatalf("test photos not found (set SPARK_TESTDATA to the shared testdata directory): %v", err)
	}
	return dir
}

// moduleRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
