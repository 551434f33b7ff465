package cache

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/spark-edge/spark/internal/contract"
)

// refreshPaths keeps origin-relative paths only, at most
// contract.MaxRefreshPaths of them.
func TestRefreshPaths(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
	}{
		{[]string{"/api/conversations"}, []string{"/api/conversations"}},
		{[]string{"/a, /b?x=1", " /c "}, []string{"/a", "/b?x=1", "/c"}},
		{[]string{"http://evil.example/a", "//evil.example/a", "a/b", "/a#f", "/a\\b", "/a\x01", ""}, nil},
		{[]string{"/1,/2,/3,/4,/5"}, []string{"/1", "/2", "/3", "/4"}},
	}
	for _, c := range cases {
		if got := refreshPaths(c.in); !slices.Equal(got, c.want) {
			t.Errorf("refreshPaths(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever the origin sends, refreshPaths returns at most MaxRefreshPaths
// origin-relative paths that parse as request URIs on this host.
func FuzzRefreshPaths(f *testing.F) {
	for _, s := range []string{"/api/conversations", "/a, /b?x=1", "//evil/a", "http://x/y", "/a#b", "/1,/2,/3,/4,/5", " /c ,", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := refreshPaths([]string{v})
		if len(got) > contract.MaxRefreshPaths {
			t.Fatalf("%d paths from %q", len(got), v)
		}
		for _, p := range got {
			if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || hasControl(p) || strings.ContainsAny(p, "#\\") {
				t.Fatalf("path %q from %q", p, v)
			}
			if u, err := url.ParseRequestURI(p); err == nil && u.Host != "" {
				t.Fatalf("path %q from %q names host %q", p, v, u.Host)
			}
		}
	})
}
