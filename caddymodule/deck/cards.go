package deck

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

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
	return listed(values, min(limit, contract.MaxDeckCards), func(id string) (string, bool) {
		return photoPrefix + id + "/profile", isCardID(id)
	})
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

// profileRequest is the GET of a card's profile path (or another path of
// the viewer's, with its query) the viewer who asked for deck r would send: r's host, address, credential (Authorization) and
// Accept-Encoding, nothing else of r. It runs through the same route as the
// viewer's own request, so spark_auth checks the credential, the origin
// decides what the viewer may read, and spark_cache stores the answer
// where the viewer's request would: shared only when the origin marks it
// public (with its deny list), never where another user could read a
// private one.
func profileRequest(r *http.Request, path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, path, nil) // a path built from checked parts: always parses
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

// maxCursor bounds a DeckNext cursor.
const maxCursor = 64

// isCursor reports whether c can be a deck cursor: digits, '.' and '_'
// only (the origin's "<metres>_<id>"), so it never changes a query but
// its own parameter's value.
func isCursor(c string) bool {
	if c == "" || len(c) > maxCursor {
		return false
	}
	for i := 0; i < len(c); i++ {
		if (c[i] < '0' || c[i] > '9') && c[i] != '.' && c[i] != '_' {
			return false
		}
	}
	return true
}

// NextPageURL is the deck request r's path and query with its after=
// parameters replaced by after=cursor: the page after r's, as the app
// asks for it (the cache sorts query parameters, so their order does not
// matter). "" when cursor is not a cursor.
func NextPageURL(r *http.Request, cursor string) string {
	if !isCursor(cursor) {
		return ""
	}
	q := make([]byte, 0, len(r.URL.RawQuery)+len(cursor)+7)
	for rest := r.URL.RawQuery; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, "&")
		if p == "" || p == "after" || strings.HasPrefix(p, "after=") {
			continue
		}
		q = append(q, p...)
		q = append(q, '&')
	}
	q = append(q, "after="...)
	q = append(q, cursor...)
	return r.URL.Path + "?" + string(q)
}

// nextPageWarm marks the context of a warm of a deck's next page: its
// answer warms its cards' profiles but not the page after it, so one
// deck request warms one page ahead, not a chain.
type nextPageWarm struct{}

// pageRequest is the GET of the next page's url the viewer who asked for
// deck r would send, as profileRequest builds it, marked nextPageWarm.
func pageRequest(r *http.Request, url string) *http.Request {
	req := profileRequest(r, url)
	return req.WithContext(context.WithValue(req.Context(), nextPageWarm{}, true))
}

// isPageWarm reports whether r is a warm of a deck's next page.
func isPageWarm(r *http.Request) bool { return r.Context().Value(nextPageWarm{}) != nil }
