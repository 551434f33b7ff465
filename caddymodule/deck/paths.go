package deck

import (
	"slices"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
)

// photoPrefix is the start of every path of the photo route
// (/api/users/{id}/photos/{name}).
const photoPrefix = "/api/users/"

// maxPhotoPath bounds one listed path.
const maxPhotoPath = 200

// PhotoPaths returns the paths a contract.DeckPhotos field lists that name
// a photo of the photo route, in order, each once, at most limit of them.
// Anything else (another path, a full URL, a query, dot segments, escapes)
// is skipped: the edge only ever announces and fetches its own photo
// route, so a field cannot point it anywhere else.
func PhotoPaths(values []string, limit int) []string {
	return listed(values, min(limit, contract.MaxDeckPhotos), func(p string) (string, bool) { return p, isPhotoPath(p) })
}

// listed returns what take makes of the items a field's values list (split
// as tag lists), in order, each once, skipping items take refuses, at most
// limit of them (a limit below 1 takes none).
func listed(values []string, limit int, take func(item string) (string, bool)) []string {
	var out []string
	for _, item := range contract.AppendTags(nil, values) {
		if len(out) >= limit {
			break
		}
		if v, ok := take(item); ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// isPhotoPath reports whether p is /api/users/<digits>/photos/<name> with
// a name of letters, digits, '_', '-' and at most one '.' not first.
func isPhotoPath(p string) bool {
	if len(p) > maxPhotoPath {
		return false
	}
	rest, ok := strings.CutPrefix(p, photoPrefix)
	if !ok {
		return false
	}
	id, name, ok := strings.Cut(rest, "/photos/")
	if !ok || id == "" || len(id) > 19 || name == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	dots := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.' && i > 0 && i < len(name)-1:
			dots++
		default:
			return false
		}
	}
	return dots <= 1
}
