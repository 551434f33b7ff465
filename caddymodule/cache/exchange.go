package cache

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/tiered"
)

// exchange is one request's pass through the cache: what ServeHTTP works
// out once (the request's policy, primary key and directives, the purge
// generation, the credential's hash) and the methods that look up, serve,
// fill, revalidate and store with it.
//
// The hit path keeps its exchange on the stack; a trip to the origin runs
// on a copy (forOrigin), which the fill's writer may keep.
type exchange struct {
	c    *Cache
	w    http.ResponseWriter // the client's (or, revalidating a HEAD or in the background, a wrapper)
	r    *http.Request       // the client's request
	next caddyhttp.Handler
	repl *caddy.Replacer // the request's; nil for a background refresh

	pol   *policy
	reqCC directives // the request's Cache-Control
	// pk is the primary key; its first uriLen bytes are the URI the URI tag
	// names (built only when the origin is involved).
	pk     string
	uriLen int
	// gen is the purge generation read before the lookup: a purge that
	// lands after it (between the lookup and a 304's refresh, or during a
	// fill) keeps whatever this exchange would store out of the cache.
	gen uint64
	// sets is the hot copies' store count read before the lookup (see
	// hotEntries.put).
	sets uint64
	// fillsSeen is the count of ended fills read before the lookup (see
	// flights.joinAfter).
	fillsSeen uint64
	// foundKey and foundExpires are the store key and expiry of the record
	// lookup returned (its Vary record's, varyExpires).
	foundKey                  string
	foundExpires, varyExpires time.Time

	cred     string // the credential's hash, once credential has run
	credDone bool
	// readBehind: the fill was fetched again because its first answer was
	// read from a replica behind a purge of its tags (see fetch).
	readBehind bool

	// background: nobody waits for the response (a stale-while-revalidate
	// refresh); there is no viewer to check.
	background bool
	// release, when set, frees the waiters coalesced on this fill; it is
	// called once the response is known not to be stored.
	release func()
}

// prepare works out the request's policy, key and directives, and reads
// the purge generation (before the lookup).
func (x *exchange) prepare() error {
	pol, err := x.c.policyFor(x.r)
	if err != nil {
		return err
	}
	x.pol = pol
	x.reqCC = parseDirectives(x.r.Header["Cache-Control"])
	x.gen = x.c.store.Generation()
	x.sets = x.c.hot.sets.Load()
	return nil
}

// setKey builds the primary key (the hot path looks up without it).
func (x *exchange) setKey() {
	x.pk, x.uriLen = primaryKeyLen(x.r.Host, x.r.URL.EscapedPath(), x.r.URL.RawQuery, x.pol.ignoreQuery)
}

// uriTag is the tag every record stored for the request's URI is indexed
// under (unsafe methods and purges by key remove it).
func (x *exchange) uriTag() string { return keyURITag(x.pk, x.uriLen) }

// credential returns the hash of the request's credential (Authorization
// and Cookie), "" when it carries none. It keys private variants and
// coalesced fills alike; it is computed once.
func (x *exchange) credential() string {
	if !x.credDone {
		x.credDone = true
		if hasCredential(x.r.Header) {
			x.cred = x.c.credentialOf(x.r.Header, x.repl)
		}
	}
	return x.cred
}

// forOrigin returns the exchange for a trip to the origin: a copy on the
// heap, which the fill's writer and callbacks may keep.
func (x *exchange) forOrigin() *exchange {
	o := *x
	return &o
}

// lookup finds the stored response the request selects.
func (x *exchange) lookup() (*entry, tiered.Layer) {
	ctx, h := x.r.Context(), x.r.Header
	rec, ok := x.c.store.GetEntry(ctx, x.pk)
	if !ok {
		return nil, tiered.LayerNone
	}
	b, layer := rec.Value, rec.Layer
	x.foundKey, x.foundExpires = x.pk, rec.Expires
	keyedByCredential := false
	if len(b) > 0 && b[0] == kindVary {
		var buf [8]string
		fields, private, err := decodeVaryAppend(buf[:0], b)
		if err != nil {
			return nil, tiered.LayerNone
		}
		cred := ""
		if private {
			if cred = x.credential(); cred == "" {
				return nil, tiered.LayerNone
			}
		}
		keyedByCredential = private || slices.Contains(fields, "authorization")
		if x.c.hot.admits(x.pk, hotOverhead, x.sets) {
			x.c.hot.put(newHotVary(x.pk, fields, private, rec.Expires, x.gen), x.sets)
		}
		sk := secondaryKey(x.pk, h, fields, cred, x.c.encodings)
		if rec, ok = x.c.store.GetEntry(ctx, sk); !ok {
			return nil, tiered.LayerNone
		}
		b, layer = rec.Value, rec.Layer
		x.foundKey, x.varyExpires, x.foundExpires = sk, x.foundExpires, rec.Expires
	}
	e, err := decodeEntry(b)
	if err != nil {
		return nil, tiered.LayerNone
	}
	if len(h["Authorization"]) > 0 {
		if !e.authOK && !keyedByCredential {
			// RFC 9111 §3.5: a response shared between users is served to an
			// authorized request only with public, s-maxage or must-revalidate.
			return nil, tiered.LayerNone
		}
	} else if e.authFill {
		// Defence in depth: what an authorized request filled is never
		// served to a request without Authorization, whatever the response
		// said (the origin answers such requests 401).
		return nil, tiered.LayerNone
	}
	e.layer = layer
	return e, layer
}

// passThrough forwards the request and streams the response back untouched
// but for the contract's fields: Spark-Purge is honoured, and it,
// Cache-Tags and Spark-Deny-Users never reach the client, on every path
// (Range, Upgrade, HEAD misses, other methods, refused viewers). s, when
// set, is the response's Cache-Status.
func (x *exchange) passThrough(s *cacheStatus) error {
	c, ctx, repl := x.c, x.r.Context(), x.repl // the callback keeps these, not x
	fw := &fillWriter{w: x.w}
	fw.onHeader = func(_ int, h http.Header) writeMode {
		c.takeOriginFields(ctx, h)
		if s != nil {
			report(h, repl, s)
		}
		return modePass
	}
	return x.next.ServeHTTP(fw, x.r)
}

// forwardDenied sends a request that a stored response may not answer (its
// deny list names the viewer, or the viewer is unknown) to the origin,
// which decides: outside request coalescing, and never stored, as the
// answer is for this viewer alone.
func (x *exchange) forwardDenied() error {
	x.c.metrics.request(resultDenied)
	return x.passThrough(&cacheStatus{fwd: fwdRequest, detail: "denied"})
}

// hasCredential reports whether the request carries a credential.
func hasCredential(h http.Header) bool {
	return len(h["Authorization"]) > 0 || len(h["Cookie"]) > 0
}

// identityPrefix starts a credential that names the verified user (the
// Handler's Identity) instead of digesting the token: '@' and ':' cannot
// start a hex digest, so the two kinds never collide.
const identityPrefix = "@user:"

// credentialOf is what keys the request's private variants and coalesced
// fills: the verified user its identity placeholder holds, when the cache
// has one and an authenticating handler set it for this one-Authorization
// request, else credentialHash. A user's entries then outlive the token
// they were filled with (a renewed token finds them).
func (c *Cache) credentialOf(h http.Header, repl *caddy.Replacer) string {
	if c.identity != "" && repl != nil && len(h["Authorization"]) == 1 {
		if user, ok := repl.GetString(c.identity); ok && user != "" {
			return identityCredential(user, h)
		}
	}
	return credentialHash(h)
}

// identityCredential keys the private variants of a verified user: the
// user's id, and the cookies (two users without distinct tokens are never
// conflated; one user's cookie-dependent answers stay apart).
func identityCredential(user string, h http.Header) string {
	return identityPrefix + hashValue(user+"\n"+strings.Join(h.Values("Cookie"), ";"))
}

// isIdentityCredential reports a credential made by identityCredential.
func isIdentityCredential(cred string) bool { return strings.HasPrefix(cred, identityPrefix) }

// credentialHash is the one-way digest of a request's credential that keys
// its private variants and its coalesced fills.
func credentialHash(h http.Header) string {
	return hashValue(strings.Join(h.Values("Authorization"), ",") + "\n" + strings.Join(h.Values("Cookie"), ";"))
}

// hotLookup finds the hot copy of the stored response the request selects,
// as lookup does in the store, without building keys on the heap. nil:
// none, or one the request may not use (lookup decides then). The clock is
// read only when there is a copy; now is that reading.
func (x *exchange) hotLookup() (he *hotEntry, now time.Time) {
	c, h := x.c, x.r.Header
	var kb [256]byte
	pk, _ := appendPrimaryKey(kb[:0], x.r.Host, x.r.URL.EscapedPath(), x.r.URL.RawQuery, x.pol.ignoreQuery)
	if he = c.hot.peek(pk); he == nil {
		return nil, now
	}
	now = c.now()
	if he = c.hot.get(c.store, pk, now); he == nil {
		return nil, now
	}
	keyedByCredential := false
	if he.isVary {
		cred := ""
		if he.priv {
			if cred = x.credential(); cred == "" {
				return nil, now
			}
		}
		keyedByCredential = he.priv || slices.Contains(he.vary, "authorization")
		var sb [384]byte
		sk := appendVariantKey(append(sb[:0], pk...), h, he.vary, cred, c.encodings)
		if he = c.hot.get(c.store, sk, now); he == nil || he.isVary {
			return nil, now
		}
	}
	if len(h["Authorization"]) > 0 {
		if !he.e.authOK && !keyedByCredential {
			return nil, now
		}
	} else if he.e.authFill {
		return nil, now
	}
	return he, now
}

// keepHot makes a hot copy of e, the fresh response lookup found, for the
// next hits.
func (x *exchange) keepHot(e *entry) {
	if e.refuseAll || x.foundKey == "" || !x.c.hot.admits(x.foundKey, int64(len(e.body)+hotOverhead), x.sets) {
		return
	}
	if srv, ok := x.r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil && srv.Logs != nil {
		x.c.hot.accessLogged.Store(true)
	}
	tags := append(e.tags(), x.uriTag())
	x.c.hot.put(newHotResponse(x.foundKey, e, x.foundExpires, x.gen, tags), x.sets)
}
