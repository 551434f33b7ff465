package cache

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/tiered"
)

// Placeholders spark_cache sets on every response it handles, for access
// logs and later handlers (handle_errors included).
const (
	// placeholderStatus is the response's Cache-Status value.
	placeholderStatus = "http.spark_cache.status"
	// placeholderLayer is the tier that answered: l1, l2, or origin.
	placeholderLayer = "http.spark_cache.layer"
)

// fwdReason is RFC 9211's fwd parameter: why the origin was asked.
type fwdReason string

const (
	fwdMiss    fwdReason = "miss"    // nothing stored that could be used
	fwdStale   fwdReason = "stale"   // a stored response had to be revalidated
	fwdBypass  fwdReason = "bypass"  // the cache does not handle such requests
	fwdRequest fwdReason = "request" // the stored response refused this viewer
)

// Details (RFC 9211's detail parameter) more than one place gives.
const (
	detailStaleIfError = "stale-if-error"
	detailRevalidated  = "revalidated"
)

// cacheStatus is one Cache-Status value of this cache (RFC 9211), e.g.
// "spark; hit; ttl=117; detail=l1" or "spark; fwd=miss; stored".
type cacheStatus struct {
	// fwd is why the origin was asked; empty for a hit.
	fwd fwdReason
	// fwdStatus is the origin's status where it is not the response's: the
	// 304 that refreshed a stored response, the error stale-if-error hid.
	// 0: not said.
	fwdStatus int
	// ttl is a hit's remaining freshness in seconds (negative: stale).
	ttl int64
	// stored: the origin's response was stored.
	stored bool
	// layer is the tier whose stored response answered; empty when the
	// origin's response did.
	layer tiered.Layer
	// detail says why or how: the reason a response was not stored
	// (private), how a stored one was used (stale-while-revalidate,
	// revalidated).
	detail string
}

// appendTo appends the field value to b. The detail of a response served
// from a stored one names its layer first (l1, l1-revalidated), but for
// stale-if-error, whose news is the origin's failure.
func (s *cacheStatus) appendTo(b []byte) []byte {
	b = append(b, "spark"...)
	if s.fwd == "" {
		b = append(b, "; hit; ttl="...)
		b = strconv.AppendInt(b, s.ttl, 10)
	} else {
		b = append(b, "; fwd="...)
		b = append(b, s.fwd...)
		if s.fwdStatus != 0 {
			b = append(b, "; fwd-status="...)
			b = strconv.AppendInt(b, int64(s.fwdStatus), 10)
		}
	}
	if s.stored {
		b = append(b, "; stored"...)
	}
	namesLayer := s.layer != "" && s.detail != detailStaleIfError
	if !namesLayer && s.detail == "" {
		return b
	}
	b = append(b, "; detail="...)
	if namesLayer {
		b = append(b, s.layer...)
		if s.detail != "" {
			b = append(b, '-')
		}
	}
	return append(b, s.detail...)
}

// String returns the field value.
func (s *cacheStatus) String() string { return string(s.appendTo(make([]byte, 0, 64))) }

// layerName is the placeholderLayer value of a tier. The values are
// constants, so storing one in the replacer costs no allocation.
func layerName(l tiered.Layer) any {
	switch l {
	case tiered.LayerL1:
		return string(tiered.LayerL1)
	case tiered.LayerL2:
		return string(tiered.LayerL2)
	}
	return "origin"
}

// report puts s on the response header h and in the placeholders.
func report(h http.Header, repl *caddy.Replacer, s *cacheStatus) {
	v := s.String()
	h[contract.CacheStatus] = []string{v}
	if repl != nil {
		repl.Set(placeholderStatus, v)
		repl.Set(placeholderLayer, layerName(s.layer))
	}
}
