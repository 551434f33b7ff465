package deck

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/spark-edge/spark/internal/contract"
)

// maxCardID bounds one listed id: an int64 has at most 19 digits.
const maxCardID = 19

// CardProfilePaths returns the profile paths (/api/users/<id>/profile) of
// the user ids a contract.DeckCards field lists, in order, each once, at
// most limit of them. Anything but a positive decimal id is skipped, so a
// field can only ever make the edge fetch profiles of its own profile
// route.
func CardProfilePaths(values []string, limit int) []string {
	var out []string
	for _, id := range contract.AppendTags(nil, values) {
		if len(out) >= limit || len(out) >= contract.MaxDeckCards { // a limit below 1 takes none
			break
		}
		if !isCardID(id) {
			continue
		}
		if p := photoPrefix + id + "/profile"; !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// isCardID reports whether s is a positive int64 in decimal without
// leading zeros or sign.
func isCardID(s string) bool {
	if s == "" || len(s) > maxCardID || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// profileRequest is the GET of a card's profile path the viewer who asked
// for deck r would send: r's host, address, credential (Authorization) and
// Accept-Encoding, nothing else of r. It runs through the same route as the
// viewer's own request, so spark_auth checks the credential, the origin
// decides what the viewer may read, and spark_cache stores the answer
// where the viewer's request would: shared only when the origin marks it
// public (with its deny list), never where another user could read a
// private one.
func profileRequest(r *http.Request, path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, path, nil) // a built path of digits: always parses
	req.Host = r.Host
	req.URL.Host = r.Host
	req.URL.Scheme = "http"
	req.RemoteAddr = r.RemoteAddr
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	for _, f := range []string{"Authorization", "Accept-Encoding"} {
		if v := r.Header.Values(f); len(v) > 0 {
			req.Header[f] = slices.Clone(v)
		}
	}
	return req
}
