package image

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy"
)

func TestCleanName(t *testing.T) {
	good := map[string]string{
		"/a.jpg":         "a.jpg",
		"42/photo.jpg":   "42/photo.jpg",
		"/u/42/p/1.webp": "u/42/p/1.webp",
		"/evil.com/x":    "evil.com/x", // a name, resolved under the upstream
	}
	for in, want := range good {
		if got, err := CleanName(in); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "../etc/passwd", "/a/../../b", "/a/./b", "a//b", "/a/", "..",
		"a\\..\\b", "a\x00b", "http://evil/x", "/http:/evil/x", "//evil.com/x", "C:/x", strings.Repeat("a", 2000)} {
		if got, err := CleanName(in); err == nil || !errors.Is(err, ErrBadName) {
			t.Errorf("CleanName(%q) = %q, %v; want ErrBadName", in, got, err)
		}
	}
}

func TestDirUpstreamStaysInside(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "u"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret.jpg"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "u", "ok.jpg"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "secret.jpg"), filepath.Join(root, "link.jpg")); err != nil {
		t.Fatal(err)
	}
	d, err := NewDirUpstream(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if b, err := d.Fetch(ctx, "u/ok.jpg", 100); err != nil || string(b) != "12345" {
		t.Fatalf("Fetch ok.jpg = %q, %v", b, err)
	}
	if _, err := d.Fetch(ctx, "u/ok.jpg", 4); !errors.Is(err, imageproxy.ErrSourceTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := d.Fetch(ctx, "missing.jpg", 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := d.Fetch(ctx, "u", 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("directory: %v", err)
	}
	// Even names CleanName would refuse cannot leave the root.
	for _, name := range []string{"link.jpg", "../secret.jpg", "u/../../secret.jpg", "/etc/passwd"} {
		if b, err := d.Fetch(ctx, name, 100); err == nil {
			t.Errorf("Fetch(%q) escaped the root: %q", name, b)
		}
	}
}

func TestHTTPUpstream(t *testing.T) {
	var hits atomic.Int64
	var lastPath atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		lastPath.Store(r.URL.RawPath + "|" + r.URL.Path + "|" + r.URL.RawQuery)
		switch r.URL.Path {
		case "/api/photos/ok.jpg":
			w.Write([]byte("12345"))
		case "/api/photos/redirect.jpg":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		case "/api/photos/boom.jpg":
			w.WriteHeader(http.StatusInternalServerError)
		case "/api/photos/big.jpg":
			w.Write(make([]byte, 1000))
		case "/api/photos/slow.jpg":
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte("late"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, bad := range []string{"ftp://x/", "http:///x", "http://u:p@h/", "http://h/?a=b", "//h/x", "/dir"} {
		if _, err := NewHTTPUpstream(bad, time.Second); err == nil {
			t.Errorf("NewHTTPUpstream(%q) accepted", bad)
		}
	}
	// A generous timeout for the fetches that must succeed or fail on
	// their own merits (200 ms was a race with a loaded machine's round
	// trip), and a short one, below the slow photo's 300 ms, for slow.jpg.
	up, err := NewHTTPUpstream(srv.URL+"/api/photos", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	short, err := NewHTTPUpstream(srv.URL+"/api/photos", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The host is the configured one whatever the name looks like.
	for _, name := range []string{"evil.com/x.jpg", "a%2F..%2Fb", "x?y=1#z"} {
		if got := up.URL(name); !strings.HasPrefix(got, srv.URL+"/api/photos/") {
			t.Errorf("URL(%q) = %s leaves the base", name, got)
		}
	}
	ctx := context.Background()
	if b, err := up.Fetch(ctx, "ok.jpg", 100); err != nil || string(b) != "12345" {
		t.Fatalf("ok: %q, %v", b, err)
	}
	if _, err := up.Fetch(ctx, "x?y=1#z", 100); !errors.Is(err, ErrNotFound) || lastPath.Load() != "|/api/photos/x?y=1#z|" {
		t.Fatalf("query characters must stay in the path: %v, %v", err, lastPath.Load())
	}
	for name, want := range map[string]error{
		"missing.jpg":  ErrNotFound,
		"redirect.jpg": ErrUpstream,
		"boom.jpg":     ErrUpstream,
		"big.jpg":      imageproxy.ErrSourceTooLarge,
	} {
		if _, err := up.Fetch(ctx, name, 100); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if _, err := short.Fetch(ctx, "slow.jpg", 100); !errors.Is(err, ErrUpstream) {
		t.Errorf("slow.jpg past the timeout: %v, want %v", err, ErrUpstream)
	}
}

// FuzzCleanName: an accepted name is relative, clean, has no dot-dot
// segment and no scheme, so joining it under a base cannot leave the base.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"/a.jpg", "/../x", "/a/%2e%2e/b", "//evil.com/x", "/http://evil/x", "/a\\b", "/u/42/p/1.webp", "/a/./b", "/C:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, err := CleanName(p)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v is not ErrBadName", err)
			}
			return
		}
		if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name || strings.ContainsAny(name, "\\\x00") {
			t.Fatalf("CleanName(%q) = %q", p, name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("CleanName(%q) = %q has segment %q", p, name, seg)
			}
		}
		if first, _, _ := strings.Cut(name, "/"); strings.Contains(first, ":") {
			t.Fatalf("CleanName(%q) = %q starts with a scheme", p, name)
		}
		u, err := NewHTTPUpstream("http://origin.internal:8081/api/photos", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := url.Parse(u.URL(name))
		if err != nil || got.Host != "origin.internal:8081" || !strings.HasPrefix(got.Path, "/api/photos/") || got.RawQuery != "" {
			t.Fatalf("URL(%q) = %v (%v): leaves the base", name, got, err)
		}
	})
}
