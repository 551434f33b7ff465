package cache

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/tiered"
)

// errOnlyIfCached is the 504 of a request with only-if-cached that the
// cache cannot answer (RFC 9111 §5.2.1.7).
var errOnlyIfCached = errors.New("only-if-cached: no stored response may answer the request")

// serve answers a GET or HEAD: from the stored response when the request
// and the response allow it, else through the origin.
func (x *exchange) serve() error {
	if he, now := x.hotLookup(); he != nil && !refused(x.r, he.e) {
		age := he.e.currentAge(now)
		if usable(he.e, x.reqCC, age) == useFresh {
			x.c.metrics.hit(tiered.LayerL1, resultHit)
			x.serveHot(he, age)
			return nil
		}
	}
	x.setKey()
	x.fillsSeen = x.c.flight.endedFills()
	e, layer := x.lookup()
	if e == nil {
		return x.serveMiss()
	}
	if refused(x.r, e) {
		if x.reqCC.onlyIfCached {
			return x.onlyIfCached()
		}
		return x.forwardDenied()
	}
	age := e.currentAge(x.c.now())
	switch usable(e, x.reqCC, age) {
	case useFresh:
		x.c.metrics.hit(layer, resultHit)
		x.keepHot(e)
		return x.serveHit(e, age, "")
	case useStale:
		x.c.metrics.hit(layer, resultStale)
		x.refreshInBackground()
		return x.serveHit(e, age, "stale-while-revalidate")
	}
	if x.reqCC.onlyIfCached {
		return x.onlyIfCached()
	}
	return x.forOrigin().revalidate(e)
}

// serveMiss answers a request nothing stored may answer.
func (x *exchange) serveMiss() error {
	switch {
	case x.reqCC.onlyIfCached:
		return x.onlyIfCached()
	case x.r.Method == http.MethodHead:
		x.c.metrics.request(resultMiss)
		return x.passThrough(&cacheStatus{fwd: fwdMiss, detail: "head"})
	}
	return x.forOrigin().fetchCoalesced()
}

// onlyIfCached refuses a request with only-if-cached that the cache cannot
// answer: a 504 left to Caddy's error handling (handle_errors sees it), its
// Cache-Status already on the response.
func (x *exchange) onlyIfCached() error {
	x.c.metrics.request(resultMiss)
	report(x.w.Header(), x.repl, &cacheStatus{fwd: fwdMiss, detail: "only-if-cached"})
	return caddyhttp.Error(http.StatusGatewayTimeout, errOnlyIfCached)
}

// serveHit serves e as a hit from its layer; detail says how ("",
// "stale-while-revalidate", "coalesced").
func (x *exchange) serveHit(e *entry, age time.Duration, detail string) error {
	x.serveStored(e, age, &cacheStatus{ttl: ttlSeconds(e, age), layer: e.layer, detail: detail})
	return nil
}

// ttlSeconds is a hit's remaining freshness in whole seconds (negative:
// stale for that long, rounded up).
func ttlSeconds(e *entry, age time.Duration) int64 {
	rem := e.fresh - age
	if rem < 0 {
		return -secondsCeil(-rem)
	}
	return int64(rem / time.Second)
}

// servedValues are the per-response header values of a served entry (Age,
// Cache-Status, Content-Length): one allocation, whose pointer is also the
// {http.spark_cache.status} placeholder's value (a pointer in an interface
// costs none).
type servedValues [3]string

// String returns the Cache-Status value.
func (v *servedValues) String() string { return v[1] }

// serveStored writes the stored response e with the Cache-Status s,
// answering the client's conditional request with 304 where its validators
// match (RFC 9110 §13). Age, Cache-Status and Content-Length share one
// string and one array: two allocations for the per-response values.
func (x *exchange) serveStored(e *entry, age time.Duration, s *cacheStatus) {
	notMod := e.status == http.StatusOK && conditional(x.r) && notModified(x.r, e.fields())
	h := x.w.Header()
	e.copyFields(h)
	var buf [96]byte
	b := strconv.AppendInt(buf[:0], int64(age/time.Second), 10)
	ageEnd := len(b)
	b = s.appendTo(b)
	statusEnd := len(b)
	if !notMod {
		b = strconv.AppendInt(b, int64(len(e.body)), 10)
	}
	str := string(b)
	vals := new(servedValues)
	vals[0], vals[1], vals[2] = str[:ageEnd], str[ageEnd:statusEnd], str[statusEnd:]
	h["Age"] = vals[0:1:1]
	h[contract.CacheStatus] = vals[1:2:2]
	if x.repl != nil {
		x.repl.Set(placeholderStatus, vals)
		x.repl.Set(placeholderLayer, layerName(s.layer))
	}
	x.writeEntry(h, e, vals[2:3:3], notMod)
}

// writeEntry ends a served entry's response: a 304 without the
// representation's fields where notMod, else e's status with the
// Content-Length value length and e's body (none for HEAD).
func (x *exchange) writeEntry(h http.Header, e *entry, length []string, notMod bool) {
	if notMod {
		for _, f := range [...]string{"Content-Type", "Content-Encoding", "Content-Language"} {
			delete(h, f)
		}
		x.w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = length
	x.w.WriteHeader(e.status)
	if x.r.Method != http.MethodHead && len(e.body) > 0 {
		_, _ = x.w.Write(e.body)
	}
}

// notModified evaluates If-None-Match (weak comparison), or If-Modified-Since
// when there is no If-None-Match, against stored validators. (Stored and
// request field names are canonical: the maps are read directly.)
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		etag := firstValue(h["Etag"])
		for _, v := range inm {
			if contract.MatchETagList(v, etag) {
				return true
			}
		}
		return false
	}
	if ims := firstValue(r.Header["If-Modified-Since"]); ims != "" {
		since, err := http.ParseTime(ims)
		lm, err2 := http.ParseTime(firstValue(h["Last-Modified"]))
		return err == nil && err2 == nil && !lm.After(since)
	}
	return false
}

// conditional reports whether r has a validator for notModified.
func conditional(r *http.Request) bool {
	return len(r.Header["If-None-Match"]) > 0 || len(r.Header["If-Modified-Since"]) > 0
}

// firstValue is a field's first value, or "".
func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
