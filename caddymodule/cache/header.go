package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// unstoredFields are never stored with a response: hop-by-hop fields,
// Set-Cookie, the contract's fields, and those the cache writes itself.
var unstoredFields = [...]string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Set-Cookie",
	contract.CacheTags, contract.SparkPurge, contract.DenyUsers, contract.CacheStatus, "Age", "Content-Length",
}

// storableHeader copies the fields of h that a stored response keeps.
func storableHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range unstoredFields {
		delete(out, f)
	}
	if c := h.Get("Connection"); c != "" {
		for _, f := range strings.Split(c, ",") {
			out.Del(strings.TrimSpace(f))
		}
	}
	return out
}

// sanitizeAge fixes the Age field the origin sent before it is forwarded:
// a list keeps its first member, the one the age calculation uses (RFC 9111
// §5.1); an invalid value is dropped, and one over 2^31-1 is sent as
// 2147483648 (§1.2.2).
func sanitizeAge(h http.Header) {
	v := h["Age"]
	if len(v) == 0 {
		return
	}
	switch a, ok := parseAgeField(v); {
	case !ok:
		delete(h, "Age")
	case a >= maxDelta*time.Second:
		h["Age"] = []string{"2147483648"}
	case len(v) > 1 || strings.ContainsAny(v[0], ", \t"):
		h["Age"] = []string{strconv.FormatInt(int64(a/time.Second), 10)}
	}
}

// clearHeader empties h.
func clearHeader(h http.Header) { clear(h) }
