package origin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPutSyncsFileAndDirectories: an upload is acknowledged only after the
// file, the user's directory (the new name) and, for a user's first photo,
// the root (the new directory) are fsynced; a delete syncs the directory.
// The hook records each sync and still performs it.
func TestPutSyncsFileAndDirectories(t *testing.T) {
	ps, err := NewDirPhotoStorage(filepath.Join(t.TempDir(), "photos"))
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	var synced []string
	ps.sync = func(name string, f *os.File) error {
		synced = append(synced, name)
		return f.Sync()
	}
	ctx := context.Background()
	first, _ := NewPhotoName("jpg")
	second, _ := NewPhotoName("png")
	if err := ps.Put(ctx, 7, first, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if want := []string{".", "7/" + first + ".tmp", "7"}; !slices.Equal(synced, want) {
		t.Fatalf("first upload synced %q, want %q", synced, want)
	}
	synced = nil
	if err := ps.Put(ctx, 7, second, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"7/" + second + ".tmp", "7"}; !slices.Equal(synced, want) {
		t.Fatalf("second upload synced %q, want %q", synced, want)
	}
	synced = nil
	if err := ps.Delete(ctx, 7, first); err != nil {
		t.Fatal(err)
	}
	if want := []string{"7"}; !slices.Equal(synced, want) {
		t.Fatalf("delete synced %q, want %q", synced, want)
	}
}
