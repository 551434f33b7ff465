package origin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startOrigin runs origin.Run with cfg in the background and waits until it
// listens. stop ends it and returns Run's error; the test's cleanup calls it
// too.
func startOrigin(t *testing.T, cfg origin.Config) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- origin.Run(ctx, cfg, quietLog(), func(a string) { addrc <- a }) }()
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("origin: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("origin did not start")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("origin did not shut down")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

// TestRunEmbedded starts the origin as `spark origin` does (embedded store,
// demo users, dev secret), serves a token-authenticated request, and shuts
// down when the context ends.
func TestRunEmbedded(t *testing.T) {
	addr, stop := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 50, DemoSeed: 3})
	tok, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/matches/suggestions?limit=5", "/api/conversations", "/api/matches"} {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		if path == "/api/conversations" && !strings.Contains(string(body), `"unread_count"`) {
			t.Fatalf("demo user 1 has no conversations: %s", body)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// TestRunPostGISNeedsSecret: on PostGIS the origin refuses the dev secret.
func TestRunPostGISNeedsSecret(t *testing.T) {
	err := origin.Run(context.Background(), origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.URL()}, quietLog(), nil)
	if err == nil || !strings.Contains(err.Error(), "JWT secret") {
		t.Fatalf("Run without a secret on PostGIS: %v", err)
	}
	if s, dev, err := origin.ResolveSecret("", "", false); err != nil || !dev || s != origin.DevJWTSecret {
		t.Fatalf("embedded store should use the dev secret: %q %v %v", s, dev, err)
	}
}

// TestRunPostGISNeedsPhotoDir: on PostGIS uploads need a directory that
// outlives the process; the embedded store defaults to a temporary one.
func TestRunPostGISNeedsPhotoDir(t *testing.T) {
	err := origin.Run(context.Background(), origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.URL(), JWTSecret: "origin-run-test-secret-0123456789abcdef"}, quietLog(), nil)
	if err == nil || !strings.Contains(err.Error(), "photo directory") {
		t.Fatalf("Run without a photo directory on PostGIS: %v", err)
	}
	if d, dev, err := origin.ResolvePhotoDir("", ""); err != nil || !dev || d != origin.DefaultPhotoDir() {
		t.Fatalf("embedded store should use the default photo directory: %q %v %v", d, dev, err)
	}
	if d, dev, err := origin.ResolvePhotoDir("/srv/photos", "postgres://x"); err != nil || dev || d != "/srv/photos" {
		t.Fatalf("configured photo directory: %q %v %v", d, dev, err)
	}
}

// TestRunPostGISMigrates starts on the test database with --migrate and a secret.
func TestRunPostGISMigrates(t *testing.T) {
	pgtest.Open(t, "test_origin_run")
	addr, stop := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.SchemaURL(t, "test_origin_run"),
		JWTSecret: "origin-run-test-secret-0123456789abcdef", Migrate: true, PhotoDir: t.TempDir()})
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("readyz %d", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRunDefaultPhotoDirPrivate: with the embedded store, the default photo
// directory under the temporary directory is made private, one another
// user could have planted (writable by others) stops the start with a
// clear error, and the start-up line says the data ends with the process.
func TestRunDefaultPhotoDirPrivate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := origin.DefaultPhotoDir()
	if !strings.HasPrefix(dir, tmp) {
		t.Fatalf("default photo dir %s not under TMPDIR %s", dir, tmp)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	started, cancelStarted := context.WithCancel(context.Background())
	defer cancelStarted()
	err := origin.Run(started, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 1}, quietLog(), func(string) { cancelStarted() })
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "may write") {
		t.Fatalf("Run with a world-writable default photo directory: %v", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- origin.Run(ctx, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 1}, slog.New(slog.NewTextHandler(&logs, nil)),
			func(string) { cancel() })
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("default photo directory created with %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if out := logs.String(); !strings.Contains(out, "spark origin listening") || !strings.Contains(out, "LOST when it exits") {
		t.Fatalf("start-up log does not say the embedded store's data ends with the process:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
