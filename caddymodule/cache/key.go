package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

// Key layout (all keys of one URI start with its path, so prefix purges are
// a string prefix test):
//
//	primary:   path ["?" sorted query] "\x00" host
//	secondary: primary "\x1f" field "=" value ("\x1e" field "=" value)...
//	URI tag:   "\x00uri " path ["?" sorted query]   (every stored record)
const (
	hostSep      = "\x00"
	varySep      = "\x1f"
	fieldSep     = "\x1e"
	uriTagPrefix = "\x00uri "
)

// maxVaryFields bounds the Vary list a response may have and still be
// stored; maxKeyPart bounds a normalized request value before it is hashed.
const (
	maxVaryFields = 16
	maxKeyPart    = 128
)

// primaryKey returns the cache key of the request URI and the URI tag that
// indexes every record stored for it. Query parameters are sorted, and those
// matched by ignore (exact names, or prefixes ending in '*') are dropped.
func primaryKey(host, escapedPath, rawQuery string, ignore []string) (key, uriTag string) {
	q := normalizeQuery(rawQuery, ignore)
	var b strings.Builder
	b.Grow(len(escapedPath) + len(q) + len(host) + 2)
	b.WriteString(escapedPath)
	if q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	uriLen := b.Len()
	b.WriteString(hostSep)
	b.WriteString(strings.ToLower(host))
	key = b.String()
	return key, uriTagPrefix + key[:uriLen]
}

// normalizeQuery sorts the query's parameters and drops ignored ones. A query
// that is already sorted with nothing to drop is returned as is.
func normalizeQuery(q string, ignore []string) string {
	if q == "" {
		return ""
	}
	if len(ignore) == 0 && !strings.Contains(q, "&") {
		return q
	}
	params := strings.Split(q, "&")
	kept := params[:0]
	for _, p := range params {
		if p == "" {
			continue
		}
		name, _, _ := strings.Cut(p, "=")
		if ignored(name, ignore) {
			continue
		}
		kept = append(kept, p)
	}
	slices.Sort(kept)
	return strings.Join(kept, "&")
}

func ignored(name string, ignore []string) bool {
	for _, ig := range ignore {
		if p, ok := strings.CutSuffix(ig, "*"); ok {
			if strings.HasPrefix(name, p) {
				return true
			}
		} else if name == ig {
			return true
		}
	}
	return false
}

// credentialFields are request fields whose values identify a user; they
// enter keys only as hashes.
func isCredentialField(f string) bool {
	return f == "authorization" || f == "cookie" || f == "proxy-authorization"
}

// hasCredential reports whether the request carries a credential.
func hasCredential(h http.Header) bool {
	return len(h["Authorization"]) > 0 || len(h["Cookie"]) > 0
}

// secondaryKey builds the key of the variant of primary that the request
// selects, given the response's Vary fields (lower case). When private is
// set the request's credential is part of the key. encodings is the list of
// content codings the edge can produce, best first.
func secondaryKey(primary string, h http.Header, fields []string, private bool, encodings []string) string {
	var b strings.Builder
	b.WriteString(primary)
	b.WriteString(varySep)
	for i, f := range fields {
		if i > 0 {
			b.WriteString(fieldSep)
		}
		b.WriteString(f)
		b.WriteByte('=')
		b.WriteString(normalizeField(f, h.Values(f), encodings))
	}
	if private {
		// Always, even when Vary names Authorization: a user who
		// authenticates with a cookie has no Authorization value, and two
		// such users must not share a variant. '@' is not a field-name
		// character, so no Vary field can forge this part.
		b.WriteString(fieldSep)
		b.WriteString("@credential=")
		b.WriteString(hashValue(strings.Join(h.Values("Authorization"), ",") + "\n" + strings.Join(h.Values("Cookie"), ";")))
	}
	return b.String()
}

// normalizeField turns a request field's values into their canonical form
// for a cache key.
func normalizeField(field string, values []string, encodings []string) string {
	switch {
	case len(values) == 0:
		return ""
	case isCredentialField(field):
		return hashValue(strings.Join(values, ","))
	case field == "accept-encoding":
		return encodingBucket(values, encodings)
	}
	var s string
	switch field {
	case "accept", "accept-language", "accept-charset":
		s = normalizeList(values)
	default:
		s = strings.Join(strings.Fields(strings.Join(values, ",")), " ")
	}
	if len(s) > maxKeyPart || strings.ContainsAny(s, varySep+fieldSep) {
		return hashValue(s)
	}
	return s
}

// normalizeList lower-cases a comma-separated list, removes white space and
// sorts its members, so "en-US, fr;q=0.5" and "fr;q=0.5,en-us" are one key.
func normalizeList(values []string) string {
	var items []string
	for _, v := range values {
		for _, it := range strings.Split(v, ",") {
			it = strings.ToLower(strings.Join(strings.Fields(it), ""))
			if it != "" {
				items = append(items, it)
			}
		}
	}
	slices.Sort(items)
	items = slices.Compact(items)
	return strings.Join(items, ",")
}

// encodingBucket maps Accept-Encoding to the set of the edge's codings the
// client accepts, so that the thousands of distinct Accept-Encoding strings
// in the wild make a handful of variants.
func encodingBucket(values []string, encodings []string) string {
	var accepted []string
	for _, enc := range encodings {
		if acceptsCoding(values, enc) {
			accepted = append(accepted, enc)
		}
	}
	return strings.Join(accepted, ",")
}

// acceptsCoding reports whether Accept-Encoding values accept coding with a
// non-zero q-value (explicitly or through "*").
func acceptsCoding(values []string, coding string) bool {
	star := false
	for _, v := range values {
		for _, it := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(it), ";")
			name = strings.TrimSpace(name)
			zero := isZeroQ(params)
			if strings.EqualFold(name, coding) {
				return !zero
			}
			if name == "*" && !zero {
				star = true
			}
		}
	}
	return star
}

func isZeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "0." || v == "0" || v == ""
		}
	}
	return false
}

// hashValue returns a short one-way digest of a request value.
func hashValue(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// parseVary returns the lower-cased field names of Vary values, and whether
// one of them is "*".
func parseVary(values []string) (fields []string, star bool) {
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			switch {
			case f == "":
			case f == "*":
				star = true
			case !slices.Contains(fields, f):
				fields = append(fields, f)
			}
		}
	}
	slices.Sort(fields)
	return fields, star
}
