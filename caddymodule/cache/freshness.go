package cache

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// heuristicFraction and maxHeuristic bound heuristic freshness (RFC 9111
// §4.2.2): 10% of the time since Last-Modified, at most a day.
const (
	heuristicFraction = 10
	maxHeuristic      = 24 * time.Hour
)

// cacheableByDefault are the status codes RFC 9110 §15.1 lets a cache store
// with heuristic freshness (206 is left out: the edge does not store ranges).
var cacheableByDefault = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 308: true, 404: true, 405: true, 410: true, 414: true, 501: true}

// cacheableWithExplicit are the further status codes stored only when the
// response states its freshness. Other statuses (5xx above all) are never
// stored, so an origin hiccup cannot poison the cache.
var cacheableWithExplicit = map[int]bool{302: true, 303: true, 307: true}

// edgeDirectives returns the directives that apply to this edge: the
// CDN-Cache-Control field when the origin sent one (RFC 9213), else
// Cache-Control. targeted reports which.
func edgeDirectives(h http.Header) (d directives, targeted bool) {
	if v := h["Cdn-Cache-Control"]; len(v) > 0 {
		return parseDirectives(v), true
	}
	return parseDirectives(h["Cache-Control"]), false
}

// storeDecision is the outcome of deciding whether a response may be stored.
type storeDecision struct {
	ok     bool
	reason string // why not, for Cache-Status detail
	// perUser: the variant key includes the credential.
	perUser bool
	vary    []string
	tags    []string
	e       entry
}

// decideStore applies RFC 9111 §3 and the policy to a response to req,
// whose Cache-Control is reqCC. reqTime and respTime bracket the origin
// exchange.
func decideStore(req *http.Request, reqCC directives, status int, h http.Header, pol policy, reqTime, respTime time.Time) storeDecision {
	d := storeDecision{}
	if req.Method != http.MethodGet {
		d.reason = "method"
		return d
	}
	cc, targeted := edgeDirectives(h)
	plain := cc
	if targeted {
		plain = parseDirectives(h["Cache-Control"])
	}
	switch {
	// no-store and private in Cache-Control hold even when CDN-Cache-Control
	// sets the edge's lifetime: the edge never relaxes what protects users.
	case cc.noStore || plain.noStore || reqCC.noStore:
		d.reason = "no-store"
		return d
	case !cacheableByDefault[status] && !(cacheableWithExplicit[status] && (cc.maxAge >= 0 || cc.sMaxAge >= 0 || len(h["Expires"]) > 0)):
		d.reason = "status"
		return d
	case strings.HasPrefix(h.Get("Content-Type"), "text/event-stream"):
		d.reason = "event-stream"
		return d
	case len(h["Content-Range"]) > 0:
		d.reason = "range"
		return d
	}
	fields, star := parseVary(h["Vary"])
	if star {
		d.reason = "vary-star"
		return d
	}
	for _, f := range pol.vary {
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	if len(fields) > maxVaryFields {
		d.reason = "vary-too-long"
		return d
	}
	slices.Sort(fields)

	authorized := hasCredential(req.Header)
	private := cc.private || plain.private || slices.Contains(fields, "authorization") || slices.Contains(fields, "cookie")
	if authorized && !cc.public && cc.sMaxAge < 0 && !cc.mustRevalidate {
		// RFC 9111 §3.5: a shared cache stores such a response only with
		// public, s-maxage or must-revalidate; per user when the rule allows.
		private = true
	}
	if len(h["Set-Cookie"]) > 0 {
		// Session cookies must never reach another user.
		private = true
	}
	if private {
		if !pol.private || !authorized {
			d.reason = "private"
			return d
		}
		d.perUser = true
	}

	e := &d.e
	e.status = status
	e.stored = respTime
	e.age = correctedAge(h, reqTime, respTime)
	e.noCache = cc.noCache
	e.mustRevalidate = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0 && !targeted
	e.authOK = cc.public || cc.sMaxAge >= 0 || cc.mustRevalidate
	e.authFill = len(req.Header["Authorization"]) > 0
	e.fresh = freshnessLifetime(cc, targeted, h, status, pol, respTime)
	if e.noCache {
		e.fresh = 0
	}
	e.swr, e.sie = cc.staleWhileRevalidate, cc.staleIfError
	// RFC 9111 §4.2.4: a cache serves stale only where the origin (or the
	// client) allows it. The policy's default windows stand in for the
	// origin only on responses that were fresh when they arrived: one
	// without freshness information, with max-age=0, an Expires in the past
	// or an age past its lifetime never gets them, and is revalidated before
	// every use. (A rule's ttl is the operator giving a lifetime, so a
	// response under one counts as fresh.)
	freshOnArrival := e.fresh > e.age
	if e.swr < 0 && freshOnArrival {
		e.swr = pol.swr
	}
	if e.sie < 0 && freshOnArrival {
		e.sie = pol.sie
	}
	hasValidator := len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0 || pol.etag && status == http.StatusOK
	if !freshOnArrival && !hasValidator && e.swr <= 0 && e.sie <= 0 {
		// Nothing to serve it from: not fresh, nothing to revalidate with,
		// and no stale window the origin gave.
		d.reason = "not-fresh"
		return d
	}
	d.vary = fields
	d.ok = true
	return d
}

// freshnessLifetime computes how long a response stays fresh at this edge
// (RFC 9111 §4.2.1), with the rule's TTL replacing what Cache-Control,
// Expires or heuristics say, but not what CDN-Cache-Control says.
func freshnessLifetime(cc directives, targeted bool, h http.Header, status int, pol policy, now time.Time) time.Duration {
	switch {
	case targeted && cc.sMaxAge >= 0:
		return cc.sMaxAge
	case targeted && cc.maxAge >= 0:
		return cc.maxAge
	case pol.ttl > 0:
		return pol.ttl
	case cc.sMaxAge >= 0:
		return cc.sMaxAge
	case cc.maxAge >= 0:
		return cc.maxAge
	}
	if v := h["Expires"]; len(v) > 0 {
		// RFC 9111 §5.3: an invalid Expires (parsed strictly, see
		// parseHTTPDate), or more than one, means already expired.
		exp, ok := parseHTTPDate(v[0], now)
		if !ok || len(v) > 1 {
			return 0
		}
		date := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			date = d
		}
		if exp.After(date) {
			return exp.Sub(date)
		}
		return 0
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && cacheableByDefault[status] && !cc.noCache {
		date := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			date = d
		}
		if date.After(lm) {
			return min(date.Sub(lm)/heuristicFraction, maxHeuristic)
		}
	}
	return 0
}

// correctedAge is the response's age when received (RFC 9111 §4.2.3).
func correctedAge(h http.Header, reqTime, respTime time.Time) time.Duration {
	var apparent time.Duration
	if date, err := http.ParseTime(h.Get("Date")); err == nil && respTime.After(date) {
		apparent = respTime.Sub(date)
	}
	ageValue, _ := parseAgeField(h["Age"])
	corrected := ageValue + respTime.Sub(reqTime)
	return max(apparent, corrected)
}

// currentAge is the entry's age now.
func (e *entry) currentAge(now time.Time) time.Duration {
	return e.age + max(now.Sub(e.stored), 0)
}

// usability says how a stored response may be used for a request.
type usability int

const (
	useFresh      usability = iota // serve it
	useStale                       // stale but within stale-while-revalidate: serve and refresh
	useRevalidate                  // validate with the origin first
)

// usable applies the request's directives (RFC 9111 §5.2.1) and the entry's
// freshness.
func usable(e *entry, reqCC directives, age time.Duration) usability {
	if e.noCache || reqCC.noCache {
		return useRevalidate
	}
	if reqCC.maxAge >= 0 && age > reqCC.maxAge {
		return useRevalidate
	}
	remaining := e.fresh - age
	if reqCC.minFresh >= 0 && remaining < reqCC.minFresh {
		return useRevalidate
	}
	if remaining > 0 {
		return useFresh
	}
	if e.mustRevalidate {
		return useRevalidate
	}
	if reqCC.maxStaleAny || reqCC.maxStale >= 0 && -remaining <= reqCC.maxStale {
		return useFresh
	}
	if e.swr > 0 && -remaining < e.swr {
		return useStale
	}
	return useRevalidate
}

// staleIfErrorOK reports whether the entry may be served because the origin
// failed.
func (e *entry) staleIfErrorOK(age time.Duration) bool {
	return !e.mustRevalidate && !e.noCache && e.sie > 0 && age-e.fresh < e.sie
}
