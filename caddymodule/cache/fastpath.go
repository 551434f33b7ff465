package cache

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"

	"github.com/spark-edge/spark/caddymodule/internal/fastreq"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/tiered"
)

// fastPath answers, before Caddy's pipeline, the requests spark_cache
// would answer from a hot copy as a fresh public L1 hit, with the bytes
// the pipeline would write (but for Date and Age, which are of the
// moment). It answers only what it can prove equal: a plain request
// (fastreq), a path the operator listed as reaching spark_cache untouched,
// no credential, a copy that is fresh, public, not deny-listed, 200, keyed
// at most by Accept-Encoding, and a server without access logs. Anything
// else is the pipeline's (see fastConn).
type fastPath struct {
	fastPathOptions
	// noDirectives is a request without Cache-Control.
	noDirectives directives
	date         atomic.Pointer[dateLine]
}

// dateLine is the Date field of one second.
type dateLine struct {
	sec  int64
	line []byte
}

// fastWire is a hot copy's header block as the fast path writes it: the
// status line and the stored fields in net/http's order, with Caddy's
// Server field unless the response has its own; the per-response fields
// (Age, Cache-Status, Content-Length, Date) follow.
type fastWire struct {
	// ok: the copy can be written this way (else the pipeline serves it).
	ok bool
	// head200 answers a request; head304 a matching If-None-Match.
	head200, head304 []byte
	// hasDate: the stored response has a Date, written as stored.
	hasDate bool
	etag    string
}

// fastPathOptions configure a fastPath.
type fastPathOptions struct {
	// name is the spark_cache whose copies are served.
	name string
	// paths are the paths served: exact, or a prefix ending in '*'.
	paths []string
	// idle is how long a connection may wait for its next request.
	idle time.Duration
	// takeBack: a connection is answered again after net/http answered a
	// plain request on it (see fastConn); off, it is net/http's for good
	// after the first request the fast path cannot answer.
	takeBack bool
}

// newFastPath returns the fast path of the cache named o.name.
func newFastPath(o fastPathOptions) *fastPath {
	return &fastPath{fastPathOptions: o, noDirectives: parseDirectives(nil)}
}

// resolve returns the pooled state of the cache, nil when none or more
// than one cache of that name is loaded.
func (f *fastPath) resolve() *pooled {
	var found *pooled
	n := 0
	pool.Range(func(_, v any) bool {
		if p := v.(*pooled); p.name == f.name {
			found, n = p, n+1
		}
		return true
	})
	if n != 1 || found.cache.Load() == nil {
		return nil
	}
	return found
}

// pathServed reports whether the operator listed path.
func (f *fastPath) pathServed(path []byte) bool {
	for _, p := range f.paths {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if len(path) >= len(prefix) && string(path[:len(prefix)]) == prefix {
				return true
			}
		} else if string(path) == p {
			return true
		}
	}
	return false
}

// respond appends to dst the header block of the response to req and
// returns it with the body to write after it; ok false: the pipeline must
// answer req.
func (f *fastPath) respond(p *pooled, req *fastreq.Request, dst []byte) (head, body []byte, ok bool) {
	if !f.pathServed(req.Path) || p.hot.accessLogged.Load() {
		return nil, nil, false
	}
	c := p.cache.Load()
	if c == nil {
		return nil, nil, false
	}
	// The primary key without the policy's ignored query parameters: a
	// query holding one of them gives a key no record has (a miss here),
	// any other the key the pipeline builds.
	var kb [256]byte
	pk, _ := appendPrimaryKey(kb[:0], bytesString(req.Host), bytesString(req.Path), bytesString(req.Query), nil)
	he := p.hot.peek(pk)
	if he == nil {
		return nil, nil, false
	}
	now := c.now()
	if he = p.hot.get(p.store, pk, now); he == nil {
		return nil, nil, false
	}
	if he.isVary {
		if he.priv || len(he.vary) != 1 || he.vary[0] != "accept-encoding" {
			return nil, nil, false
		}
		var sb [384]byte
		sk := appendEncodingVariantKey(append(sb[:0], pk...), req, c.encodings)
		if he = p.hot.get(p.store, sk, now); he == nil || he.isVary {
			return nil, nil, false
		}
	}
	e := he.e
	if e.status != http.StatusOK || e.authFill || e.refuseAll || len(e.deny) > 0 {
		return nil, nil, false
	}
	age := e.currentAge(now)
	if usable(e, f.noDirectives, age) != useFresh {
		return nil, nil, false
	}
	w := he.wire.Load()
	if w == nil {
		w = newFastWire(e)
		he.wire.Store(w)
	}
	if !w.ok {
		return nil, nil, false
	}
	notMod := req.HasIfNoneMatch && contract.MatchETagList(bytesString(req.IfNoneMatch), w.etag)
	m := he.servedFor(age, ttlSeconds(e, age))
	if notMod {
		dst = append(dst, w.head304...)
	} else {
		dst = append(dst, w.head200...)
	}
	dst = append(dst, "Age: "...)
	dst = append(dst, m.str[:m.ageEnd]...)
	dst = append(dst, "\r\nCache-Status: "...)
	dst = append(dst, m.str[m.ageEnd:m.statusEnd]...)
	if !notMod {
		dst = append(dst, "\r\nContent-Length: "...)
		dst = append(dst, m.str[m.statusEnd:]...)
	}
	dst = append(dst, "\r\n"...)
	if !w.hasDate {
		dst = append(dst, f.dateLine(now)...)
	}
	dst = append(dst, "\r\n"...)
	p.metrics.hit(tiered.LayerL1, resultHit)
	p.metrics.fastPath.Inc()
	if notMod || req.Head {
		return dst, nil, true
	}
	return dst, e.body, true
}

// appendEncodingVariantKey appends to a primary key the rest of the key of
// the variant a response varying on Accept-Encoding alone keeps for req:
// appendVariantKey's, from the parsed field.
func appendEncodingVariantKey(dst []byte, req *fastreq.Request, encodings []string) []byte {
	dst = append(dst, varySep+"accept-encoding="...)
	if req.HasAcceptEncoding {
		v := [1]string{bytesString(req.AcceptEncoding)}
		dst = appendEncodingBucket(dst, v[:], encodings)
	}
	return dst
}

// dateLine returns the Date field line of now's second.
func (f *fastPath) dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := f.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	b := append(make([]byte, 0, 40), "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	f.date.Store(&dateLine{sec: sec, line: b})
	return b
}

// hopByHop are fields a stored response never carries onto the wire as
// they are; a copy holding one is left to the pipeline.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Te"}

// newFastWire builds e's header block as serveHot and net/http would
// write it. A response without Content-Type (net/http would sniff one), or
// with a field net/http would drop or rewrite, is not ok.
func newFastWire(e *entry) *fastWire {
	w := &fastWire{}
	if len(e.header["Content-Type"]) == 0 {
		return w
	}
	names := make([]string, 0, len(e.header)+1)
	for name := range e.header {
		switch {
		case name == "Age" || name == contract.CacheStatus || name == "Content-Length":
			continue // per response
		case !httpguts.ValidHeaderFieldName(name) || slices.Contains(hopByHop, name):
			return w
		}
		for _, v := range e.header[name] {
			if !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v || strings.ContainsAny(v, "\r\n") {
				return w
			}
		}
		names = append(names, name)
	}
	if _, ok := e.header["Server"]; !ok {
		names = append(names, "Server")
	}
	slices.Sort(names)
	_, w.hasDate = e.header["Date"]
	w.etag = firstValue(e.header["Etag"])
	head200 := []byte("HTTP/1.1 200 OK\r\n")
	head304 := []byte("HTTP/1.1 304 Not Modified\r\n")
	for _, name := range names {
		vs := e.header[name]
		if name == "Server" && vs == nil {
			vs = []string{caddyhttp.ServerHeader}
		}
		for _, v := range vs {
			line := name + ": " + v + "\r\n"
			head200 = append(head200, line...)
			switch name {
			case "Content-Type", "Content-Encoding", "Content-Language":
			default:
				head304 = append(head304, line...)
			}
		}
	}
	w.head200, w.head304, w.ok = head200, head304, true
	return w
}

// bytesString views b as a string without copying; the string must not
// outlive b's contents.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
