package cache

import (
	"encoding/binary"
	"net/http"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/internal/contract"
)

// Deny lists (the edge–origin contract): on a shared response some users
// may not see, the origin sends "Spark-Deny-Users: 17 42 977". The edge
// stores the ids with the entry, never forwards the field, and never serves
// the stored response to a viewer in the list or to an unknown viewer.
//
// A list holds at most contract.MaxDenyUsers ids; past it the origin sends
// the response private instead, and the edge does not store one that says
// otherwise.

// viewerPlaceholder holds the authenticated user's id in decimal, set by
// spark_auth (or any Caddy authentication handler) before spark_cache.
const viewerPlaceholder = "http.auth.user.id"

// parseDenyUsers parses the values of Spark-Deny-Users: decimal user ids
// separated by spaces, tabs or commas, at most contract.MaxDenyUsers of them. ok is
// false for anything else; the ids come back sorted, without duplicates.
// An empty field is an empty list: nobody is refused.
func parseDenyUsers(values []string) (ids []uint64, ok bool) {
	for _, v := range values {
		for i := 0; i < len(v); {
			c := v[i]
			if c == ' ' || c == '\t' || c == ',' {
				i++
				continue
			}
			j := i
			for j < len(v) && v[j] >= '0' && v[j] <= '9' {
				j++
			}
			if j == i || j < len(v) && v[j] != ' ' && v[j] != '\t' && v[j] != ',' {
				return nil, false // not a digit, or digits run into junk
			}
			id, err := strconv.ParseUint(v[i:j], 10, 64)
			if err != nil || len(ids) == contract.MaxDenyUsers {
				return nil, false
			}
			ids = append(ids, id)
			i = j
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), true
}

// denyList is a deny list in the entry encoding: the sorted ids as
// uvarint deltas from the previous one. Lookups read it in place.
type denyList []byte

// appendDenyList appends the encoding of sorted, distinct ids to dst.
func appendDenyList(dst []byte, ids []uint64) []byte {
	var prev uint64
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, id-prev)
		prev = id
	}
	return dst
}

// contains reports whether id is in the list. A corrupt list contains
// everyone.
func (d denyList) contains(id uint64) bool {
	found := false
	intact := d.each(func(cur uint64) bool {
		found = cur == id
		return cur < id // the ids are sorted: past id, it is not there
	})
	return found || !intact
}

// ids decodes the list (for tests and logs).
func (d denyList) ids() []uint64 {
	var out []uint64
	d.each(func(id uint64) bool {
		out = append(out, id)
		return true
	})
	return out
}

// each calls f with the ids in order while f returns true. It reports
// false when it met a corrupt delta before f stopped it.
func (d denyList) each(f func(id uint64) bool) bool {
	var cur uint64
	for off := 0; off < len(d); {
		delta, n := binary.Uvarint(d[off:])
		if n <= 0 {
			return false
		}
		off += n
		cur += delta
		if !f(cur) {
			return true
		}
	}
	return true
}

// viewerID returns the id of the user the request was authenticated as:
// the http.auth.user.id placeholder, in decimal. ok is false when there is
// none, or when it is not a decimal id: an unknown viewer.
func viewerID(r *http.Request) (id uint64, ok bool) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return 0, false
	}
	v, found := repl.Get(viewerPlaceholder)
	if !found {
		return 0, false
	}
	switch v := v.(type) {
	case string:
		if v == "" || v[0] < '0' || v[0] > '9' { // ParseUint takes no sign, but say so
			return 0, false
		}
		id, err := strconv.ParseUint(v, 10, 64)
		return id, err == nil
	case int:
		if v >= 0 {
			return uint64(v), true
		}
	case int64:
		if v >= 0 {
			return uint64(v), true
		}
	case uint64:
		return v, true
	}
	return 0, false
}

// refused reports whether the stored response e must not be served to r:
// its deny list names r's viewer, or r's viewer is unknown. Such a request
// goes to the origin, which decides.
func refused(r *http.Request, e *entry) bool {
	if e.refuseAll {
		return true
	}
	if len(e.deny) == 0 {
		return false
	}
	id, ok := viewerID(r)
	return !ok || e.deny.contains(id)
}
