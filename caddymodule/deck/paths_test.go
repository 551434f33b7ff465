package deck

import (
	"slices"
	"strings"
	"testing"
)

func TestPhotoPaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		limit  int
		want   []string
	}{
		{"in order", []string{"/api/users/4/photos/a.jpg /api/users/2/photos/b.png"}, 5,
			[]string{"/api/users/4/photos/a.jpg", "/api/users/2/photos/b.png"}},
		{"several fields, commas", []string{"/api/users/4/photos/a.jpg,", "/api/users/5/photos/c"}, 5,
			[]string{"/api/users/4/photos/a.jpg", "/api/users/5/photos/c"}},
		{"limit", []string{"/api/users/1/photos/a /api/users/2/photos/b /api/users/3/photos/c"}, 2,
			[]string{"/api/users/1/photos/a", "/api/users/2/photos/b"}},
		{"once each", []string{"/api/users/1/photos/a /api/users/1/photos/a"}, 5, []string{"/api/users/1/photos/a"}},
		{"never elsewhere", []string{
			"http://169.254.169.254/latest /api/users/1/profile /api/users/1/photos/../../admin " +
				"/api/users/x/photos/a //evil/api/users/1/photos/a /api/users/1/photos/a?x=1 /api/users/1/photos/a%2F " +
				"/api/users/1/photos/.a /api/users/1/photos/a. /api/users/1/photos/a.b.c /api/users//photos/a " +
				"/api/users/1/photos/ /api/users/1/photos/a/b"}, 10, nil},
		{"too long", []string{"/api/users/1/photos/" + strings.Repeat("a", maxPhotoPath)}, 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PhotoPaths(tc.values, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("PhotoPaths(%q, %d) = %q, want %q", tc.values, tc.limit, got, tc.want)
			}
		})
	}
}
