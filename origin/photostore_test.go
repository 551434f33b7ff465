package origin_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// TestPrivatePhotoStorage: the default directory (under the OS temporary
// directory, where any local user may create it first) is created 0700;
// an existing one is used only when it is a real directory of ours that
// no one else may write to.
func TestPrivatePhotoStorage(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "spark-photos")
	ps, err := origin.NewPrivatePhotoStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created with %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// Ours and private (0700, or 0750 as older versions made it): accepted.
	for _, mode := range []os.FileMode{0o700, 0o750} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		ps, err := origin.NewPrivatePhotoStorage(dir)
		if err != nil {
			t.Fatalf("own directory %v refused: %v", mode, err)
		}
		ps.Close()
	}
	// Writable by others: refused, saying why.
	for _, mode := range []os.FileMode{0o777, 0o770, 0o1777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := origin.NewPrivatePhotoStorage(dir); err == nil || !strings.Contains(err.Error(), "may write") {
			t.Fatalf("directory with mode %v: %v", mode, err)
		}
	}
	// A symbolic link to a directory elsewhere: refused.
	elsewhere := t.TempDir()
	link := filepath.Join(base, "linked")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if _, err := origin.NewPrivatePhotoStorage(link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("symbolic link: %v", err)
	}
	// A file in its place: refused.
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := origin.NewPrivatePhotoStorage(file); err == nil {
		t.Fatal("a file accepted as the photo directory")
	}
	// Another user's: refused (changing the owner needs root).
	if os.Geteuid() != 0 {
		t.Log("not root: the other owner's case is not exercised")
		return
	}
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := origin.NewPrivatePhotoStorage(theirs); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
		t.Fatalf("another user's directory: %v", err)
	}
}
