package deck

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/spark-edge/spark/internal/contract"
)

// FuzzPhotoPaths checks that whatever a Spark-Deck-Photos field holds,
// every path taken is a clean path of the photo route that parses as a
// URL path with nothing else (no host, query or escape), at most the
// limit, each once.
func FuzzPhotoPaths(f *testing.F) {
	for _, s := range []string{
		"/api/users/4/photos/a.jpg /api/users/2/photos/b.png",
		"/api/users/1/photos/../../admin",
		"http://127.0.0.1:2019/config/",
		"/api/users/1/photos/a%2e%2e",
		"/api/users/1/photos/a,/api/users/1/photos/a",
		"\x00/api/users/1/photos/\xff",
	} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, field string, limit int) {
		got := PhotoPaths([]string{field}, limit)
		if len(got) > max(limit, 0) || len(got) > contract.MaxDeckPhotos {
			t.Fatalf("%d paths for limit %d", len(got), limit)
		}
		seen := map[string]bool{}
		for _, p := range got {
			u, err := url.Parse(p + "?w=400&q=75")
			if err != nil || u.Host != "" || u.Scheme != "" || u.Path != p || u.RawPath != "" {
				t.Fatalf("%q does not parse as a bare path: %+v %v", p, u, err)
			}
			if path.Clean(p) != p || !strings.HasPrefix(p, photoPrefix) || !strings.Contains(p, "/photos/") {
				t.Fatalf("%q is not a clean photo path", p)
			}
			if seen[p] {
				t.Fatalf("%q twice", p)
			}
			seen[p] = true
		}
	})
}
