package cache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/tiered"
)

// Header fields of the edge <-> origin contract.
const (
	headerCacheTags   = "Cache-Tags"
	headerSparkPurge  = "Spark-Purge"
	headerDenyUsers   = "Spark-Deny-Users"
	headerCacheStatus = "Cache-Status"
)

// hopByHop fields are never stored.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Set-Cookie", headerCacheTags, headerSparkPurge, headerDenyUsers, headerCacheStatus, "Age", "Content-Length"}

// Cache is the response cache's logic, independent of Caddy's module
// machinery. Its zero value is not usable; build one with newCache.
type Cache struct {
	store     *tiered.Cache
	rules     []compiledRule
	def       policy
	encodings []string
	maxEntry  int
	metrics   *metrics
	logger    *zap.Logger
	now       func() time.Time
	// bg runs background fills with the request context detached.
	bg     func(r *http.Request) *http.Request
	flight flights
	wg     sync.WaitGroup
}

// newCache builds the cache logic over a store.
func newCache(store *tiered.Cache, m *metrics, logger *zap.Logger, def Policy, rules []Rule, encodings []string, maxEntry int) *Cache {
	c := &Cache{
		store:     store,
		def:       resolve(def, Policy{}),
		encodings: encodings,
		maxEntry:  maxEntry,
		metrics:   m,
		logger:    logger,
		now:       time.Now,
		bg:        func(r *http.Request) *http.Request { return r.Clone(context.WithoutCancel(r.Context())) },
	}
	for _, r := range rules {
		c.rules = append(c.rules, compiledRule{pattern: r.Path, literal: literalPrefix(r.Path), pol: resolve(r.Policy, def)})
	}
	return c
}

type compiledRule struct {
	pattern string
	literal string // the pattern's prefix before any wildcard: a cheap reject
	pol     policy
}

// policyFor returns the policy of the first rule matching the path.
func (c *Cache) policyFor(p string) *policy {
	for i := range c.rules {
		if strings.HasPrefix(p, c.rules[i].literal) && matchPath(c.rules[i].pattern, p) {
			return &c.rules[i].pol
		}
	}
	return &c.def
}

// isSafe reports the methods RFC 9110 §9.2.1 defines as safe. Any other
// method, registered or not, may change state: RFC 9111 §4.4 has a cache
// invalidate after one of unknown safety as after an unsafe one.
func isSafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// ServeHTTP answers r from the cache or through next.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !isSafe(r.Method) {
			return c.serveUnsafe(w, r, next)
		}
		c.metrics.request(resultBypass)
		return c.passThrough(w, r, next, "spark; fwd=bypass; detail=method")
	}
	if len(r.Header["Upgrade"]) > 0 {
		return c.passThrough(w, r, next, "") // WebSocket and friends: untouched
	}
	if len(r.Header["Range"]) > 0 {
		c.metrics.request(resultBypass)
		return c.passThrough(w, r, next, "spark; fwd=bypass; detail=range")
	}
	pol := c.policyFor(r.URL.Path)
	reqCC := parseDirectives(r.Header["Cache-Control"])
	// The URI tag is only needed when the origin is involved: a fresh hit
	// does not build it.
	pk, uriLen := primaryKeyLen(r.Host, r.URL.EscapedPath(), r.URL.RawQuery, pol.ignoreQuery)
	// The purge generation is read before the lookup: a purge that lands
	// after it (between the lookup and a 304's refresh, or during a fill)
	// keeps whatever this request would store out of the cache.
	gen := c.store.Generation()

	if e, layer := c.lookup(r, pk); e != nil {
		if refused(r, e) {
			if reqCC.onlyIfCached {
				return c.gatewayTimeout(w)
			}
			return c.forwardDenied(w, r, next)
		}
		now := c.now()
		age := e.currentAge(now)
		switch usable(e, reqCC, age) {
		case useFresh:
			c.metrics.hit(layer, resultHit)
			return c.serveHit(w, r, e, age, layer, "")
		case useStale:
			c.metrics.hit(layer, resultStale)
			c.refreshInBackground(r, next, pk, keyURITag(pk, uriLen), pol)
			return c.serveHit(w, r, e, age, layer, "-stale-while-revalidate")
		default:
			if reqCC.onlyIfCached {
				return c.gatewayTimeout(w)
			}
			return c.revalidate(w, r, next, e, fill{pk: pk, uriTag: keyURITag(pk, uriLen), pol: pol, gen: gen})
		}
	}
	uriTag := keyURITag(pk, uriLen)
	if reqCC.onlyIfCached {
		return c.gatewayTimeout(w)
	}
	if r.Method == http.MethodHead {
		c.metrics.request(resultMiss)
		return c.passThrough(w, r, next, "spark; fwd=miss; detail=head")
	}
	return c.fetchCoalesced(w, r, next, fill{pk: pk, uriTag: uriTag, pol: pol, gen: gen, fwd: "miss"})
}

// fill is what a fetch from the origin needs to know besides the request.
type fill struct {
	pk, uriTag string
	pol        *policy
	// gen is the purge generation read before the lookup that led here.
	gen uint64
	// fwd is the Cache-Status fwd= of the response (miss, stale).
	fwd string
	// stale, when set, is the entry being revalidated: a 304 refreshes it
	// and an origin failure may serve it (stale-if-error).
	stale *entry
	// background: nobody waits for the response (a stale-while-revalidate
	// refresh); there is no viewer to check.
	background bool
	// release, when set, is called once the response is known not to be
	// stored (it frees coalesced waiters).
	release func()
}

// passThrough forwards r and streams the response back untouched but for
// the contract's fields: Spark-Purge is honoured, and it, Cache-Tags and
// Spark-Deny-Users never reach the client, on every path (Range, Upgrade,
// HEAD misses, other methods, refused viewers). status, when set, is the
// response's Cache-Status.
func (c *Cache) passThrough(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, status string) error {
	fw := &fillWriter{w: w}
	fw.onHeader = func(_ int, h http.Header) writeMode {
		c.takeOriginFields(r.Context(), h)
		if status != "" {
			h.Set(headerCacheStatus, status)
		}
		return modePass
	}
	return next.ServeHTTP(fw, r)
}

// forwardDenied sends a request that a stored response may not answer (its
// deny list names the viewer, or the viewer is unknown) to the origin,
// which decides: outside request coalescing, and never stored, as the
// answer is for this viewer alone.
func (c *Cache) forwardDenied(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	c.metrics.request(resultDenied)
	return c.passThrough(w, r, next, "spark; fwd=request; detail=denied")
}

// originFields are the contract's fields of an origin response.
type originFields struct {
	tags, deny []string // nil when absent
}

// takeOriginFields applies the response's Spark-Purge and removes it,
// Cache-Tags and Spark-Deny-Users from h (they are for the edge, never for
// clients), returning the last two.
func (c *Cache) takeOriginFields(ctx context.Context, h http.Header) originFields {
	c.applyPurge(ctx, h)
	f := originFields{tags: h[headerCacheTags], deny: h[headerDenyUsers]}
	delete(h, headerCacheTags)
	delete(h, headerDenyUsers)
	return f
}

func ttlSeconds(e *entry, age time.Duration) int64 {
	rem := e.fresh - age
	if rem < 0 {
		return -secondsCeil(-rem)
	}
	return int64(rem / time.Second)
}

func (c *Cache) gatewayTimeout(w http.ResponseWriter) error {
	c.metrics.request(resultMiss)
	w.Header().Set(headerCacheStatus, "spark; fwd=miss; detail=only-if-cached")
	w.WriteHeader(http.StatusGatewayTimeout)
	return nil
}

// lookup finds the stored response the request selects.
func (c *Cache) lookup(r *http.Request, pk string) (*entry, tiered.Layer) {
	ctx := r.Context()
	b, layer, ok := c.store.Get(ctx, pk)
	if !ok {
		return nil, tiered.LayerNone
	}
	keyedByCredential := false
	if len(b) > 0 && b[0] == kindVary {
		var buf [8]string
		fields, private, err := decodeVaryAppend(buf[:0], b)
		if err != nil {
			return nil, tiered.LayerNone
		}
		if private && !hasCredential(r.Header) {
			return nil, tiered.LayerNone
		}
		keyedByCredential = private || containsString(fields, "authorization")
		b, layer, ok = c.store.Get(ctx, secondaryKey(pk, r.Header, fields, private, c.encodings))
		if !ok {
			return nil, tiered.LayerNone
		}
	}
	e, err := decodeEntry(b)
	if err != nil {
		return nil, tiered.LayerNone
	}
	if len(r.Header["Authorization"]) > 0 {
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

// serveEntry writes a stored response, answering the client's conditional
// request with 304 where its validators match (RFC 9110 §13).
func (c *Cache) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, age time.Duration, status string) error {
	return writeEntry(w, r, e, age, status, false, "", "")
}

// serveHit serves e as a hit of layer, with the Cache-Status
// "spark; hit; ttl=N; detail=<layer><suffix>".
func (c *Cache) serveHit(w http.ResponseWriter, r *http.Request, e *entry, age time.Duration, layer tiered.Layer, suffix string) error {
	return writeEntry(w, r, e, age, "", true, layer, suffix)
}

// writeEntry is serveEntry; for a hit it formats the Cache-Status itself.
// Age, Cache-Status and Content-Length share one string and one backing
// array: two allocations for the per-response values.
func writeEntry(w http.ResponseWriter, r *http.Request, e *entry, age time.Duration, status string, hit bool, layer tiered.Layer, suffix string) error {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	notMod := e.status == http.StatusOK && notModified(r, e.header)
	var buf [96]byte
	b := strconv.AppendInt(buf[:0], int64(age/time.Second), 10)
	ageEnd := len(b)
	if hit {
		b = append(b, "spark; hit; ttl="...)
		b = strconv.AppendInt(b, ttlSeconds(e, age), 10)
		b = append(b, "; detail="...)
		b = append(b, layer...)
		b = append(b, suffix...)
	}
	statusEnd := len(b)
	if !notMod {
		b = strconv.AppendInt(b, int64(len(e.body)), 10)
	}
	s := string(b)
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = s[:ageEnd], status, s[statusEnd:]
	if hit {
		vals[1] = s[ageEnd:statusEnd]
	}
	h["Age"] = vals[0:1:1]
	h[headerCacheStatus] = vals[1:2:2]
	if notMod {
		for _, f := range []string{"Content-Type", "Content-Encoding", "Content-Language"} {
			delete(h, f)
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Length"] = vals[2:3:3]
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead && len(e.body) > 0 {
		_, _ = w.Write(e.body)
	}
	return nil
}

// notModified evaluates If-None-Match (weak comparison), or If-Modified-Since
// when there is no If-None-Match, against stored validators.
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		etag := h.Get("Etag")
		if etag == "" {
			return false
		}
		for _, v := range inm {
			for _, t := range strings.Split(v, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
					return true
				}
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		since, err := http.ParseTime(ims)
		lm, err2 := http.ParseTime(h.Get("Last-Modified"))
		return err == nil && err2 == nil && !lm.After(since)
	}
	return false
}

// fetchCoalesced fetches a miss from the origin. Concurrent misses for the
// same key (and the same credential) wait for the first one and then look
// again, so the origin sees one request; a waiter whose lookup still misses
// (the response was not storable, or varies) fetches for itself, and one
// the stored response refuses is forwarded on its own.
func (c *Cache) fetchCoalesced(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, f fill) error {
	fk := f.pk
	if hasCredential(r.Header) {
		fk += varySep + hashValue(r.Header.Get("Authorization")+"\n"+r.Header.Get("Cookie"))
	}
	call, leader := c.flight.join(fk)
	if !leader {
		select {
		case <-call.done:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		f.gen = c.store.Generation() // before this lookup, as in ServeHTTP
		if e, layer := c.lookup(r, f.pk); e != nil {
			if refused(r, e) {
				return c.forwardDenied(w, r, next)
			}
			age := e.currentAge(c.now())
			if usable(e, parseDirectives(r.Header["Cache-Control"]), age) == useFresh {
				c.metrics.hit(layer, resultHit)
				return c.serveHit(w, r, e, age, layer, "-coalesced")
			}
		}
		return c.fetch(w, r, next, r, f)
	}
	// Waiters are released as soon as the response turns out not to be
	// stored (an event stream, a long poll, no-store): they fetch for
	// themselves instead of waiting for its end.
	var once sync.Once
	f.release = func() { once.Do(func() { c.flight.leave(fk, call) }) }
	defer f.release()
	return c.fetch(w, r, next, r, f)
}

// fetch forwards r to next, streaming the response to w and storing it when
// allowed. client is the client's own request: its conditionals, not the
// validators a revalidation put in r, decide whether the client gets a 304.
func (c *Cache) fetch(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, client *http.Request, f fill) error {
	pol, stale := f.pol, f.stale
	reqTime := c.now()
	var dec storeDecision
	var staleAge time.Duration
	if stale != nil {
		staleAge = stale.currentAge(reqTime)
	}
	var of304 originFields // the contract's fields of a 304 refreshing stale
	fw := &fillWriter{w: w, limit: c.maxEntry}
	fw.onHeader = func(status int, h http.Header) writeMode {
		of := c.takeOriginFields(r.Context(), h)
		sanitizeAge(h)
		if stale != nil {
			if status == http.StatusNotModified {
				of304 = of
				return modeCapture
			}
			if status >= 500 && stale.staleIfErrorOK(staleAge) {
				return modeCapture
			}
		}
		dec = decideStore(r, status, h, *pol, reqTime, c.now())
		if dec.ok {
			saveDenyList(&dec, of.deny)
		}
		if !dec.ok {
			h.Set(headerCacheStatus, "spark; fwd="+f.fwd+"; detail="+dec.reason)
			if f.release != nil {
				f.release()
			}
			return modePass
		}
		if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl > int64(c.maxEntry) {
			// Known to be over the limit: pass it through, and say so
			// rather than "stored".
			dec.ok = false
			h.Set(headerCacheStatus, "spark; fwd="+f.fwd+"; detail=too-large")
			if f.release != nil {
				f.release()
			}
			return modePass
		}
		dec.e.header = storableHeader(h)
		h.Set(headerCacheStatus, "spark; fwd="+f.fwd+"; stored")
		saveTags(&dec, of.tags)
		if pol.etag && status == http.StatusOK && h.Get("Etag") == "" {
			return modeHold // the ETag is a hash of the whole body
		}
		return modeStore
	}
	err := next.ServeHTTP(fw, r)
	fetched := c.now()
	c.metrics.originFetch(fetched.Sub(reqTime))

	if stale != nil && (err != nil && !fw.wroteHeader || fw.mode == modeCapture && fw.status != http.StatusNotModified) {
		if stale.staleIfErrorOK(staleAge) {
			c.metrics.hit(stale.layer, resultStaleIfError)
			st := "spark; fwd=stale; detail=stale-if-error"
			if fw.wroteHeader {
				st = "spark; fwd=stale; fwd-status=" + strconv.Itoa(fw.status) + "; detail=stale-if-error"
			}
			clearHeader(w.Header())
			return c.serveEntry(w, client, stale, stale.currentAge(fetched), st)
		}
		// (Capture happens only when stale-if-error allows it, so nothing
		// captured is left to write here.)
		return err
	}
	if stale != nil && fw.mode == modeCapture && fw.status == http.StatusNotModified {
		c.metrics.hit(stale.layer, resultRevalidated)
		fresh := c.refreshEntry(r, f, w.Header(), of304, reqTime, fetched)
		clearHeader(w.Header())
		if !f.background && refused(client, fresh) {
			// The 304 brought a deny list that refuses this viewer.
			return c.forwardDenied(w, client, next)
		}
		return c.serveEntry(w, client, fresh, fresh.currentAge(fetched), "spark; fwd=stale; fwd-status=304; detail="+string(stale.layer)+"-revalidated")
	}
	if err != nil {
		c.metrics.request(resultMiss)
		return err
	}
	c.metrics.request(resultMiss)
	if !dec.ok {
		return nil
	}
	body, complete := fw.body()
	if fw.mode == modeHold {
		if complete {
			sum := sha256.Sum256(body)
			etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
			dec.e.header.Set("Etag", etag)
			w.Header().Set("Etag", etag)
			if notModified(client, dec.e.header) {
				delete(w.Header(), "Content-Type")
				w.WriteHeader(http.StatusNotModified)
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(fw.status)
				if client.Method != http.MethodHead {
					_, _ = w.Write(body)
				}
			}
		}
	}
	if !complete {
		return nil
	}
	dec.e.body = body
	c.storeDecision(r, f.pk, f.uriTag, &dec, f.gen)
	return nil
}

// saveTags records the origin's Cache-Tags on a store decision.
func saveTags(dec *storeDecision, values []string) {
	dec.tags = append(dec.tags, splitTags(values)...)
}

// splitTags splits Cache-Tags (or Spark-Purge) values into tags.
func splitTags(values []string) []string {
	var tags []string
	for _, v := range values {
		tags = append(tags, strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })...)
	}
	return tags
}

// saveDenyList records the origin's Spark-Deny-Users on a store decision.
// A list that does not parse (or is too long) keeps the response out of
// the cache: the origin's answer still reaches the requester it was made
// for, but no one else.
func saveDenyList(dec *storeDecision, values []string) {
	if values == nil {
		return
	}
	ids, ok := parseDenyUsers(values)
	if !ok {
		dec.ok, dec.reason = false, "deny-list"
		return
	}
	dec.e.deny = appendDenyList(nil, ids)
}

// storeDecision writes the entry (and the Vary record) to the store. gen is
// the purge generation read before the lookup that led to the fill.
func (c *Cache) storeDecision(r *http.Request, pk, uriTag string, dec *storeDecision, gen uint64) {
	if !dec.e.encodable() {
		c.logger.Debug("store response: too many header fields", zap.String("key", pk))
		return
	}
	ctx := r.Context()
	ttl := dec.e.fresh + max(dec.e.swr, 0) + max(dec.e.sie, 0) + time.Minute
	if dec.e.fresh <= 0 {
		ttl += time.Hour // kept for revalidation with its validators
	}
	dec.e.tagBlock = appendTags(nil, dec.tags)
	tags := append(dec.tags[:len(dec.tags):len(dec.tags)], uriTag)
	key := pk
	if len(dec.vary) > 0 || dec.perUser {
		rec := encodeVary(dec.vary, dec.perUser)
		// Untagged: purges remove the variants (and count only them); a Vary
		// record pointing at removed variants just makes misses.
		if _, err := c.store.Set(ctx, pk, rec, ttl, nil, gen); err != nil {
			c.logger.Debug("store vary record", zap.String("key", pk), zap.Error(err))
			return
		}
		key = secondaryKey(pk, r.Header, dec.vary, dec.perUser, c.encodings)
	}
	b := encodeEntry(make([]byte, 0, 256+len(dec.e.body)), &dec.e)
	if _, err := c.store.Set(ctx, key, b, ttl, tags, gen); err != nil {
		c.logger.Debug("store response", zap.String("key", pk), zap.Error(err))
	}
}

// refreshEntry merges a 304's header fields into the stale entry, recomputes
// its freshness and stores it again (RFC 9111 §4.3.4) under its tags, unless
// a purge since f.gen touched it. A deny list or Cache-Tags on the 304
// replace the stored ones; without them the stored ones stay.
func (c *Cache) refreshEntry(r *http.Request, f fill, h304 http.Header, of originFields, reqTime, respTime time.Time) *entry {
	stale := f.stale
	merged := stale.header.Clone()
	for k, v := range storableHeader(h304) {
		// Vary too: a 304 (encode adds Vary: Accept-Encoding to every 304)
		// must not move the entry to another variant key, orphaning the
		// other variants (other users' entries) of the URI.
		if k == "Content-Type" || k == "Content-Encoding" || k == "Vary" {
			continue
		}
		merged[k] = v
	}
	// The 304's Age counts for the refreshed entry's age (it is never
	// stored as a field): a 304 as old as its lifetime leaves it stale.
	if v := h304["Age"]; len(v) > 0 {
		merged["Age"] = v
	}
	dec := decideStore(r, stale.status, merged, *f.pol, reqTime, respTime)
	delete(merged, "Age")
	if !dec.ok {
		return stale
	}
	// The entry keeps who filled it: a 304 to an anonymous revalidation
	// does not make a response an authorized request got anonymous.
	dec.e.authFill = dec.e.authFill || stale.authFill
	dec.e.deny = stale.deny
	if of.deny != nil {
		ids, ok := parseDenyUsers(of.deny)
		if !ok {
			// Refused to everyone, and not stored.
			dec.e.header, dec.e.body, dec.e.refuseAll = merged, stale.body, true
			return &dec.e
		}
		dec.e.deny = appendDenyList(nil, ids)
	}
	if of.tags != nil {
		dec.tags = splitTags(of.tags)
	} else {
		dec.tags = stale.tags()
	}
	dec.e.header = merged
	dec.e.body = stale.body
	c.storeDecision(r, f.pk, f.uriTag, &dec, f.gen)
	return &dec.e
}

// revalidate asks the origin whether the stale entry e is still good. A
// HEAD is revalidated with a conditional GET (RFC 9111 §4.3.1): its 304
// refreshes the stored header fields, its 200 replaces the entry, and the
// client gets the header alone.
func (c *Cache) revalidate(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, e *entry, f fill) error {
	cond := r.Clone(r.Context())
	cond.Header.Del("If-None-Match")
	cond.Header.Del("If-Modified-Since")
	if etag := e.header.Get("Etag"); etag != "" {
		cond.Header.Set("If-None-Match", etag)
	}
	if lm := e.header.Get("Last-Modified"); lm != "" {
		cond.Header.Set("If-Modified-Since", lm)
	}
	if cond.Method == http.MethodHead {
		cond.Method = http.MethodGet
		w = headWriter{w}
	}
	f.fwd, f.stale = "stale", e
	return c.fetch(w, cond, next, r, f)
}

// headWriter drops the body of a GET made on behalf of a HEAD.
type headWriter struct{ http.ResponseWriter }

func (h headWriter) Write(p []byte) (int, error) { return len(p), nil }

// refreshInBackground revalidates a stale entry once, off the request path,
// on a context detached from the client's (Caddy cancels the request's
// context when the handler returns).
func (c *Cache) refreshInBackground(r *http.Request, next caddyhttp.Handler, pk, uriTag string, pol *policy) {
	// One refresh per variant owner: a user's private entry is not left
	// stale because another user's refresh of the URI is in flight.
	fk := "bg" + varySep + pk
	if hasCredential(r.Header) {
		fk += varySep + hashValue(r.Header.Get("Authorization")+"\n"+r.Header.Get("Cookie"))
	}
	call, leader := c.flight.join(fk)
	if !leader {
		return
	}
	bg := c.bg(r)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.flight.leave(fk, call)
		ctx, cancel := context.WithTimeout(bg.Context(), 30*time.Second)
		defer cancel()
		bg = bg.WithContext(ctx)
		if bg.Method == http.MethodHead {
			bg.Method = http.MethodGet
		}
		dw := &discardWriter{h: make(http.Header)}
		gen := c.store.Generation() // before the lookup, as in ServeHTTP
		e, _ := c.lookup(bg, pk)
		if e == nil {
			return
		}
		_ = c.revalidate(dw, bg, next, e, fill{pk: pk, uriTag: uriTag, pol: pol, gen: gen, background: true})
	}()
}

// Wait blocks until background refreshes have finished.
func (c *Cache) Wait() { c.wg.Wait() }

// serveUnsafe forwards a request whose method is not known to be safe and
// invalidates what it may have changed (RFC 9111 §4.4) before the client
// sees the response: the target URI after any non-error status (2xx, 3xx),
// and same-host Location/Content-Location only after a 2xx. A redirect's
// Location is where the client is sent, not something the request changed;
// invalidating it let anyone empty any URL by making the origin redirect.
func (c *Cache) serveUnsafe(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	fw := &fillWriter{w: w, limit: 0}
	fw.onHeader = func(status int, h http.Header) writeMode {
		c.takeOriginFields(r.Context(), h)
		if status < 200 || status >= 400 {
			h.Set(headerCacheStatus, "spark; fwd=bypass")
			return modePass
		}
		c.invalidateURI(r, r.URL)
		if status < 300 {
			for _, f := range []string{"Location", "Content-Location"} {
				if v := h.Get(f); v != "" {
					if u, err := r.URL.Parse(v); err == nil && (u.Host == "" || strings.EqualFold(u.Host, r.Host)) {
						c.invalidateURI(r, u)
					}
				}
			}
		}
		h.Set(headerCacheStatus, "spark; fwd=bypass; detail=invalidated")
		return modePass
	}
	c.metrics.request(resultBypass)
	return next.ServeHTTP(fw, r)
}

func (c *Cache) invalidateURI(r *http.Request, u *url.URL) {
	pol := c.policyFor(u.Path)
	_, tag := primaryKey(r.Host, u.EscapedPath(), u.RawQuery, pol.ignoreQuery)
	c.store.PurgeTags(r.Context(), tag)
}

// applyPurge handles a Spark-Purge field: every entry tagged with one of its
// tags is removed. The field never reaches the client.
func (c *Cache) applyPurge(ctx context.Context, h http.Header) {
	v := h[headerSparkPurge]
	if len(v) == 0 {
		return
	}
	delete(h, headerSparkPurge)
	if tags := splitTags(v); len(tags) > 0 {
		n := c.store.PurgeTags(ctx, tags...)
		c.metrics.purged(n)
	}
}

// storableHeader copies the fields of h that a stored response keeps.
func storableHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range hopByHop {
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

func clearHeader(h http.Header) {
	for k := range h {
		delete(h, k)
	}
}
