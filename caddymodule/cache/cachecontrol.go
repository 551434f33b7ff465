package cache

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDelta caps every delta-seconds value (RFC 9111 §1.2.2: a value that
// overflows is taken as 2^31 seconds, about 68 years).
const maxDelta = 1<<31 - 1

// directives is a parsed Cache-Control (or CDN-Cache-Control) field.
// Durations are -1 when the directive is absent. Unknown directives are
// ignored, as RFC 9111 §5.2.3 requires.
type directives struct {
	noStore, noCache, private, public            bool
	mustRevalidate, proxyRevalidate, noTransform bool
	onlyIfCached, immutable                      bool
	// maxStaleAny is set for a request max-stale without a value.
	maxStaleAny bool

	maxAge, sMaxAge, maxStale, minFresh time.Duration
	staleWhileRevalidate, staleIfError  time.Duration
}

// parseDirectives parses the values of a Cache-Control field. Malformed
// directives are dropped one by one; a directive that appears twice with
// conflicting values takes the most conservative (smallest) value, and an
// unparseable age makes the response stale (RFC 9111 §4.2.1 says a cache
// should consider such a response stale).
func parseDirectives(values []string) directives {
	d := directives{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, staleWhileRevalidate: -1, staleIfError: -1}
	for _, v := range values {
		for len(v) > 0 {
			var item string
			item, v = nextItem(v)
			name, arg, hasArg := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if hasArg {
				arg = strings.Trim(strings.TrimSpace(arg), `"`)
			}
			switch strings.ToLower(name) {
			case "no-store":
				d.noStore = true
			case "no-cache":
				// The qualified form (no-cache="Set-Cookie") is treated as
				// unqualified: stricter, and what RFC 9111 §5.2.2.4 allows.
				d.noCache = true
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "no-transform":
				d.noTransform = true
			case "only-if-cached":
				d.onlyIfCached = true
			case "immutable":
				d.immutable = true
			case "max-age":
				d.maxAge = mergeDelta(d.maxAge, arg, hasArg)
			case "s-maxage":
				d.sMaxAge = mergeDelta(d.sMaxAge, arg, hasArg)
			case "min-fresh":
				d.minFresh = mergeDelta(d.minFresh, arg, hasArg)
			case "stale-while-revalidate":
				d.staleWhileRevalidate = mergeDelta(d.staleWhileRevalidate, arg, hasArg)
			case "stale-if-error":
				d.staleIfError = mergeDelta(d.staleIfError, arg, hasArg)
			case "max-stale":
				if !hasArg {
					d.maxStaleAny = true
				} else {
					d.maxStale = mergeDelta(d.maxStale, arg, true)
				}
			}
		}
	}
	return d
}

// nextItem splits the next comma-separated item off v, honouring quoted
// strings so that no-cache="a, b" stays one item.
func nextItem(v string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			if inQuote {
				i++
			}
		case ',':
			if !inQuote {
				return v[:i], v[i+1:]
			}
		}
	}
	return v, ""
}

// mergeDelta parses a delta-seconds argument and merges it with a value seen
// before, keeping the smaller. An invalid argument counts as 0.
func mergeDelta(prev time.Duration, arg string, hasArg bool) time.Duration {
	secs := int64(0)
	if hasArg {
		secs = parseDeltaSeconds(arg)
	}
	d := time.Duration(secs) * time.Second
	if prev >= 0 && prev < d {
		return prev
	}
	return d
}

// parseDeltaSeconds parses a non-negative integer number of seconds, capping
// overflow at 2^31-1. Anything else (signs, fractions, junk) is 0.
func parseDeltaSeconds(s string) int64 {
	if s == "" {
		return 0
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDelta {
		return maxDelta
	}
	return n
}

// parseAgeField parses the Age field: the first member of its first line
// (RFC 9111 §5.1: a cache encountering a list-based Age value uses the
// first member, discarding the rest). ok is false when that member is
// invalid, and then the field is ignored.
func parseAgeField(values []string) (time.Duration, bool) {
	if len(values) == 0 {
		return 0, false
	}
	first, _, _ := strings.Cut(values[0], ",")
	return parseAge(first)
}

// parseAge parses one Age value; ok is false when it is invalid.
func parseAge(v string) (time.Duration, bool) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	return time.Duration(parseDeltaSeconds(v)) * time.Second, true
}

// secondsCeil formats d as whole seconds, rounding up, capped at maxDelta.
func secondsCeil(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s > maxDelta {
		return maxDelta
	}
	return s
}
