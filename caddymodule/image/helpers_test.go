package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spark-edge/spark/internal/testdata"
)

func photoDir(t testing.TB) string { return filepath.Join(testdata.Dir(t), "images") }

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
