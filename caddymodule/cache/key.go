package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
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
	key, uriLen := primaryKeyLen(host, escapedPath, rawQuery, ignore)
	return key, keyURITag(key, uriLen)
}

// primaryKeyLen returns the primary key and the length of its URI part, so
// that the hit path, which needs no URI tag, does not build one.
func primaryKeyLen(host, escapedPath, rawQuery string, ignore []string) (key string, uriLen int) {
	var buf [256]byte
	b, uriLen := appendPrimaryKey(buf[:0], host, escapedPath, rawQuery, ignore)
	return string(b), uriLen
}

// appendPrimaryKey appends the primary key to dst and returns it with the
// length of its URI part (from the start of dst).
func appendPrimaryKey(dst []byte, host, escapedPath, rawQuery string, ignore []string) ([]byte, int) {
	dst = append(dst, escapedPath...)
	dst = appendQuery(dst, rawQuery, ignore)
	uriLen := len(dst)
	dst = append(dst, hostSep...)
	return appendLower(dst, host), uriLen
}

// appendLower appends s lower-cased as strings.ToLower does.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return append(dst, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// keyURITag returns the URI tag of a primary key built by primaryKeyLen.
func keyURITag(key string, uriLen int) string { return uriTagPrefix + key[:uriLen] }

// appendQuery appends the normalized query to dst, preceded by '?' when it
// is not empty: parameters sorted, ignored ones dropped. Up to 16
// parameters are sorted without allocating.
func appendQuery(dst []byte, q string, ignore []string) []byte {
	if q == "" {
		return dst
	}
	var arr [16]string
	kept := arr[:0]
	sorted := true
	for rest := q; ; {
		p, r, more := strings.Cut(rest, "&")
		if p == "" {
			sorted = false // dropped: q is not the result
		} else if name, _, _ := strings.Cut(p, "="); len(ignore) > 0 && ignored(name, ignore) {
			sorted = false
		} else {
			if len(kept) > 0 && p < kept[len(kept)-1] {
				sorted = false
			}
			kept = append(kept, p)
		}
		if !more {
			break
		}
		rest = r
	}
	if len(kept) == 0 {
		return dst
	}
	dst = append(dst, '?')
	if sorted {
		return append(dst, q...)
	}
	slices.Sort(kept)
	for i, p := range kept {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p...)
	}
	return dst
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

// secondaryKey builds the key of the variant of primary that the request
// selects, given the response's Vary fields (lower case). credential, when
// not empty, is the request's credential (credentialHash, or the verified
// user's identityCredential, which then also stands for a Vary
// Authorization), and part of the key (a private variant). encodings is the list of content codings the edge can
// produce, best first.
func secondaryKey(primary string, h http.Header, fields []string, credential string, encodings []string) string {
	var buf [384]byte
	return string(appendVariantKey(append(buf[:0], primary...), h, fields, credential, encodings))
}

// appendVariantKey appends to dst (a primary key) the rest of
// secondaryKey's key.
func appendVariantKey(dst []byte, h http.Header, fields []string, credential string, encodings []string) []byte {
	dst = append(dst, varySep...)
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, fieldSep...)
		}
		dst = append(dst, f...)
		dst = append(dst, '=')
		if f == "authorization" && isIdentityCredential(credential) {
			// The verified user (the credential part below) stands for the
			// token, so a renewed token selects the same variant.
			dst = append(dst, identityPrefix...)
			continue
		}
		values := h[canonicalField(f)]
		if f == "accept-encoding" && len(values) > 0 {
			dst = appendEncodingBucket(dst, values, encodings)
			continue
		}
		dst = append(dst, normalizeField(f, values, encodings)...)
	}
	if credential != "" {
		// Always, even when Vary names Authorization: a user who
		// authenticates with a cookie has no Authorization value, and two
		// such users must not share a variant. '@' is not a field-name
		// character, so no Vary field can forge this part.
		dst = append(dst, fieldSep...)
		dst = append(dst, "@credential="...)
		dst = append(dst, credential...)
	}
	return dst
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
	var buf [64]byte
	return string(appendEncodingBucket(buf[:0], values, encodings))
}

// appendEncodingBucket appends encodingBucket's result to dst. It reads the
// values once for all the edge's codings; the first item naming a coding
// decides for it, "*" for the codings no item names.
func appendEncodingBucket(dst []byte, values []string, encodings []string) []byte {
	const (
		unnamed = iota
		accepted
		refused
	)
	var buf [8]byte // edges configure a handful of codings: no allocation
	state := buf[:]
	if len(encodings) > len(buf) {
		state = make([]byte, len(encodings))
	}
	star := false
	for _, v := range values {
		for v != "" {
			var name, params string
			name, params, v = cutItem(v)
			for i, enc := range encodings {
				if state[i] == unnamed && strings.EqualFold(name, enc) {
					state[i] = accepted
					if contract.QValue(params) == 0 {
						state[i] = refused
					}
				}
			}
			if name == "*" && !star {
				star = contract.QValue(params) != 0
			}
		}
	}
	first := true
	for i, enc := range encodings {
		if state[i] == accepted || state[i] == unnamed && star {
			if !first {
				dst = append(dst, ',')
			}
			dst = append(dst, enc...)
			first = false
		}
	}
	return dst
}

// cutItem cuts the first item off a comma-separated list of "name;params"
// items (Accept-Encoding's): its name and parameters, without the spaces
// around them, and the rest of the list.
func cutItem(list string) (name, params, rest string) {
	it, rest, _ := strings.Cut(list, ",")
	name, params, _ = strings.Cut(strings.TrimSpace(it), ";")
	return strings.TrimSpace(name), params, rest
}

// canonicalField returns the canonical header key of a lower-case field name.
func canonicalField(f string) string {
	switch f {
	case "accept-encoding":
		return "Accept-Encoding"
	case "accept-language":
		return "Accept-Language"
	case "accept":
		return "Accept"
	case "authorization":
		return "Authorization"
	case "cookie":
		return "Cookie"
	case "origin":
		return "Origin"
	}
	return textproto.CanonicalMIMEHeaderKey(f)
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
