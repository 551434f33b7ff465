package origin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"time"
)

// ErrPhotoNotFound: the storage holds no such original.
var ErrPhotoNotFound = errors.New("photo not found")

// PhotoStorage keeps the normalised originals of uploaded photos, by user
// id and photo name. Names reach it validated (ValidPhotoName), so an
// implementation never sees a path separator or a dot-dot. Originals are
// immutable: a name is written once.
type PhotoStorage interface {
	// Put stores data under the user and name, atomically: a reader sees
	// the whole original or nothing.
	Put(ctx context.Context, user int64, name string, data []byte) error
	// Open returns the original for reading and its modification time;
	// ErrPhotoNotFound (wrapped) when there is none.
	Open(ctx context.Context, user int64, name string) (io.ReadSeekCloser, time.Time, error)
	// Delete removes the original; a missing one is not an error.
	Delete(ctx context.Context, user int64, name string) error
}

// photoIDBytes is the randomness in a photo name: 128 bits, unguessable.
const photoIDBytes = 16

// NewPhotoName returns a fresh random name for an original in format ext
// ("jpg" or "png"): 32 lowercase hex digits, a dot, the extension.
func NewPhotoName(ext string) (string, error) {
	var b [photoIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("photo name: %w", err)
	}
	return hex.EncodeToString(b[:]) + "." + ext, nil
}

// ValidPhotoName reports whether name is one NewPhotoName can return:
// the only names the API accepts in a path, so nothing else reaches the
// storage (no traversal, no other files).
func ValidPhotoName(name string) bool {
	const n = 2 * photoIDBytes
	if len(name) != n+4 || name[n] != '.' {
		return false
	}
	for _, c := range []byte(name[:n]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	ext := name[n+1:]
	return ext == "jpg" || ext == "png"
}

// photoContentType returns the media type of a valid photo name.
func photoContentType(name string) string {
	if path.Ext(name) == ".png" {
		return "image/png"
	}
	return "image/jpeg"
}

// DirPhotoStorage keeps originals as files, dir/<user id>/<name>, through
// an os.Root: no path can leave the directory, symbolic links included.
// Writes are durable before they return: the file and the directories
// naming it are fsynced.
type DirPhotoStorage struct {
	root *os.Root
	// sync flushes an open file or directory (named relative to root) to
	// stable storage: (*os.File).Sync.
	sync func(name string, f *os.File) error
}

var _ PhotoStorage = (*DirPhotoStorage)(nil)

// NewDirPhotoStorage creates dir when needed and opens it.
func NewDirPhotoStorage(dir string) (*DirPhotoStorage, error) {
	if dir == "" {
		return nil, errors.New("origin: photo directory: empty path")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("origin: photo directory: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("origin: photo directory: %w", err)
	}
	return newDirPhotoStorage(r), nil
}

func newDirPhotoStorage(r *os.Root) *DirPhotoStorage {
	return &DirPhotoStorage{root: r, sync: func(_ string, f *os.File) error { return f.Sync() }}
}

// NewPrivatePhotoStorage is NewDirPhotoStorage for a directory where other
// local users may create files first (the default under the OS temporary
// directory): it creates dir with mode 0700, and refuses one that already
// exists unless it is a real directory (not a symbolic link) owned by this
// process's user and writable by no one else — another user could have
// made it to read or replace every upload.
func NewPrivatePhotoStorage(dir string) (*DirPhotoStorage, error) {
	if dir == "" {
		return nil, errors.New("origin: photo directory: empty path")
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("origin: photo directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("origin: photo directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("origin: photo directory %s is not a directory (%v); remove it or set --photo-dir", dir, fi.Mode().Type())
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("origin: photo directory: %w", err)
	}
	st, err := r.Stat(".")
	if err == nil && !os.SameFile(fi, st) {
		err = errors.New("replaced while being opened")
	}
	if err == nil {
		err = checkPrivateDir(st)
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("origin: refusing photo directory %s: %w; remove it or set --photo-dir", dir, err)
	}
	return newDirPhotoStorage(r), nil
}

// syncDir fsyncs a directory of the root ("." for the root itself), so
// the entries created or removed in it survive a crash.
func (d *DirPhotoStorage) syncDir(name string) error {
	f, err := d.root.Open(name)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", name, err)
	}
	err = d.sync(name, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", name, err)
	}
	return nil
}

// Dir returns the directory's path.
func (d *DirPhotoStorage) Dir() string { return d.root.Name() }

// Close releases the directory.
func (d *DirPhotoStorage) Close() error {
	if err := d.root.Close(); err != nil {
		return fmt.Errorf("origin: close photo directory: %w", err)
	}
	return nil
}

func photoPath(user int64, name string) (string, error) {
	if user <= 0 || !ValidPhotoName(name) {
		return "", fmt.Errorf("photo %d/%q: invalid user or name", user, name)
	}
	return strconv.FormatInt(user, 10) + "/" + name, nil
}

// Put implements PhotoStorage: a temporary file in the user's directory,
// synced, renamed over the name, and the directory synced (and the root,
// when the user's directory is new), so a photo acknowledged to the client
// is still there after a crash.
func (d *DirPhotoStorage) Put(ctx context.Context, user int64, name string, data []byte) error {
	p, err := photoPath(user, name)
	if err != nil {
		return fmt.Errorf("put %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put photo %s: %w", p, err)
	}
	udir := strconv.FormatInt(user, 10)
	switch err := d.root.Mkdir(udir, 0o750); {
	case err == nil:
		if err := d.syncDir("."); err != nil {
			return fmt.Errorf("put photo %s: %w", p, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("put photo %s: %w", p, err)
	}
	tmp := p + ".tmp"
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("put photo %s: %w", p, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = d.sync(tmp, f)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = d.root.Rename(tmp, p)
	}
	if werr != nil {
		_ = d.root.Remove(tmp)
		return fmt.Errorf("put photo %s: %w", p, werr)
	}
	if err := d.syncDir(udir); err != nil {
		return fmt.Errorf("put photo %s: %w", p, err)
	}
	return nil
}

// Open implements PhotoStorage.
func (d *DirPhotoStorage) Open(ctx context.Context, user int64, name string) (io.ReadSeekCloser, time.Time, error) {
	p, err := photoPath(user, name)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("open %w: %w", err, ErrPhotoNotFound)
	}
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("open photo %s: %w", p, err)
	}
	f, err := d.root.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, time.Time{}, fmt.Errorf("open photo %s: %w", p, ErrPhotoNotFound)
		}
		return nil, time.Time{}, fmt.Errorf("open photo %s: %w", p, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, time.Time{}, fmt.Errorf("open photo %s: not a regular file (%v): %w", p, err, ErrPhotoNotFound)
	}
	return f, st.ModTime(), nil
}

// Delete implements PhotoStorage.
func (d *DirPhotoStorage) Delete(ctx context.Context, user int64, name string) error {
	p, err := photoPath(user, name)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete photo %s: %w", p, err)
	}
	if err := d.root.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete photo %s: %w", p, err)
	}
	// A deleted photo must not come back after a crash.
	if err := d.syncDir(strconv.FormatInt(user, 10)); err != nil {
		return fmt.Errorf("delete photo %s: %w", p, err)
	}
	return nil
}
