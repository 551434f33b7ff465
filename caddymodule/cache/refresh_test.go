package cache

import (
	"slices"
	"testing"
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
