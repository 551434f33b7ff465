package cache

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
)

// serveUnsafe forwards a request whose method is not known to be safe and
// invalidates what it may have changed (RFC 9111 §4.4) before the client
// sees the response: the target URI after any non-error status (2xx, 3xx),
// and same-host Location/Content-Location only after a 2xx. A redirect's
// Location is where the client is sent, not something the request changed;
// invalidating it let anyone empty any URL by making the origin redirect.
func (x *exchange) serveUnsafe() error {
	c, r, repl := x.c, x.r, x.repl // the callback keeps these, not x
	fw := &fillWriter{w: x.w, limit: 0}
	var refresh []string
	fw.onHeader = func(status int, h http.Header) writeMode {
		if v := h[contract.SparkRefresh]; len(v) > 0 && status/100 == 2 {
			refresh = refreshPaths(v)
		}
		c.takeOriginFields(r.Context(), h)
		if status < 200 || status >= 400 {
			report(h, repl, &cacheStatus{fwd: fwdBypass})
			return modePass
		}
		c.invalidateURI(r, r.URL)
		if status < 300 {
			for _, f := range [...]string{"Location", "Content-Location"} {
				if v := h.Get(f); v != "" {
					if u, err := r.URL.Parse(v); err == nil && (u.Host == "" || strings.EqualFold(u.Host, r.Host)) {
						c.invalidateURI(r, u)
					}
				}
			}
		}
		report(h, repl, &cacheStatus{fwd: fwdBypass, detail: "invalidated"})
		return modePass
	}
	c.metrics.request(resultBypass)
	err := x.next.ServeHTTP(fw, r)
	if len(refresh) > 0 {
		x.refreshAfterWrite(refresh)
	}
	return err
}

// invalidateURI removes every stored variant of u on r's host.
func (c *Cache) invalidateURI(r *http.Request, u *url.URL) {
	pol := c.policyForURI(r.Context(), r.Host, u)
	_, tag := primaryKey(r.Host, u.EscapedPath(), u.RawQuery, pol.ignoreQuery)
	c.store.PurgeTags(r.Context(), tag)
}

// originFields are the contract's fields of an origin response.
type originFields struct {
	tags, deny []string // nil when absent
	// readAt is the replica position the response's data was read at
	// (Spark-Read-At), valid when replica is set; unset, the primary
	// answered (or the origin does not say).
	readAt  uint64
	replica bool
}

// takeOriginFields applies the response's Spark-Purge and removes it,
// Cache-Tags, Spark-Deny-Users, Spark-Read-At and Spark-Refresh from h (they
// are for the edge, never for clients), returning the first three. A
// Spark-Read-At that does not parse counts as a read at an unknown
// position: older than any purge.
func (c *Cache) takeOriginFields(ctx context.Context, h http.Header) originFields {
	c.applyPurge(ctx, h)
	f := originFields{tags: h[contract.CacheTags], deny: h[contract.DenyUsers]}
	delete(h, contract.CacheTags)
	delete(h, contract.DenyUsers)
	delete(h, contract.SparkRefresh) // serveUnsafe reads it first
	if v := h[contract.ReadAt]; len(v) > 0 {
		f.replica = true
		f.readAt, _ = contract.ParsePosition(strings.TrimSpace(v[0]))
		delete(h, contract.ReadAt)
	}
	return f
}

// applyPurge handles a Spark-Purge field: every entry tagged with one of its
// tags is removed, and every edge remembers the write's position (the
// response's Spark-Read-After, when it has one) for those tags, so that no
// fill read from a replica that had not replayed the write is stored
// after (see exchange.fetch). The field never reaches the client.
func (c *Cache) applyPurge(ctx context.Context, h http.Header) {
	v := h[contract.SparkPurge]
	if len(v) == 0 {
		return
	}
	delete(h, contract.SparkPurge)
	if tags := contract.AppendTags(nil, v); len(tags) > 0 {
		pos, _ := contract.ParsePosition(strings.TrimSpace(h.Get(contract.ReadAfter))) // none or bad: 0, no position
		n := c.store.PurgeTagsAt(ctx, pos, tags...)
		c.metrics.purged(n)
	}
}
