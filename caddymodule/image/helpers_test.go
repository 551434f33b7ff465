package image

import (
	"os"
	"path/filepath"
	"testing"
)

// testdataDir is the shared test data: $SPARK_TESTDATA, or shared/testdata
// beside the repository (CI puts shared/ next to the clone).
func testdataDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SPARK_TESTDATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "testdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "images")); err != nil {
		t.Fatalf("test photos not found (set SPARK_TESTDATA to the shared testdata directory): %v", err)
	}
	return dir
}

func photoDir(t testing.TB) string { return filepath.Join(testdataDir(t), "images") }

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
