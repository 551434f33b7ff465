package origin_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spark-edge/spark/origin"
)

func TestDirPhotoStorage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "photos")
	ps, err := origin.NewDirPhotoStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	name, err := origin.NewPhotoName("jpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Put(ctx, 7, name, []byte("original")); err != nil {
		t.Fatal(err)
	}
	f, mod, err := ps.Open(ctx, 7, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(b) != "original" || mod.IsZero() {
		t.Fatalf("read back %q %v %v", b, mod, err)
	}
	if _, _, err := ps.Open(ctx, 8, name); !errors.Is(err, origin.ErrPhotoNotFound) {
		t.Fatalf("another user's name: %v", err)
	}
	for _, bad := range []string{"../x.jpg", "x.jpg", name + "/..", ""} {
		if err := ps.Put(ctx, 7, bad, []byte("x")); err == nil {
			t.Errorf("Put %q accepted", bad)
		}
		if _, _, err := ps.Open(ctx, 7, bad); !errors.Is(err, origin.ErrPhotoNotFound) {
			t.Errorf("Open %q: %v", bad, err)
		}
	}
	if err := ps.Put(ctx, 0, name, []byte("x")); err == nil {
		t.Error("user 0 accepted")
	}
	// A symbolic link planted in the directory never leads out of it.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil, _ := origin.NewPhotoName("jpg")
	if err := os.Symlink(secret, filepath.Join(dir, "7", evil)); err != nil {
		t.Fatal(err)
	}
	if f, _, err := ps.Open(ctx, 7, evil); err == nil {
		f.Close()
		t.Fatal("a symbolic link out of the directory was followed")
	}
	if err := ps.Delete(ctx, 7, name); err != nil {
		t.Fatal(err)
	}
	if err := ps.Delete(ctx, 7, name); err != nil {
		t.Fatalf("deleting a missing photo: %v", err)
	}
	if _, _, err := ps.Open(ctx, 7, name); !errors.Is(err, origin.ErrPhotoNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "7"))
	if len(entries) != 1 { // the planted link only: no temporary files left
		t.Fatalf("left in the user's directory: %v", entries)
	}
}
