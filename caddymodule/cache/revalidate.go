package cache

import (
	"net/http"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// revalidate asks the origin whether the stale entry e is still good. A
// HEAD is revalidated with a conditional GET (RFC 9111 §4.3.1): its 304
// refreshes the stored header fields, its 200 replaces the entry, and the
// client gets the header alone.
func (x *exchange) revalidate(e *entry) error {
	cond := x.r.Clone(x.r.Context())
	cond.Header.Del("If-None-Match")
	cond.Header.Del("If-Modified-Since")
	if etag := e.fields().Get("Etag"); etag != "" {
		cond.Header.Set("If-None-Match", etag)
	}
	if lm := e.fields().Get("Last-Modified"); lm != "" {
		cond.Header.Set("If-Modified-Since", lm)
	}
	if cond.Method == http.MethodHead {
		cond.Method = http.MethodGet
		x.w = headWriter{x.w}
	}
	return x.fetch(cond, e)
}

// headWriter drops the body of a GET made on behalf of a HEAD.
type headWriter struct{ http.ResponseWriter }

func (h headWriter) Write(p []byte) (int, error) { return len(p), nil }

// serveStaleIfError answers a revalidation the origin failed (err before a
// response, or the 5xx fw captured) with the stale entry, where its
// stale-if-error window allows; else the failure stands.
func (x *exchange) serveStaleIfError(stale *entry, staleAge time.Duration, fw *fillWriter, fetched time.Time, err error) error {
	if !stale.staleIfErrorOK(staleAge) {
		// (Capture happens only when stale-if-error allows it, so nothing
		// captured is left to write here.)
		return err
	}
	x.c.metrics.hit(stale.layer, resultStaleIfError)
	s := cacheStatus{fwd: fwdStale, layer: stale.layer, detail: detailStaleIfError}
	if fw.wroteHeader {
		s.fwdStatus = fw.status
	}
	clearHeader(x.w.Header())
	x.serveStored(stale, stale.currentAge(fetched), &s)
	return nil
}

// serveRevalidated answers with the stale entry the origin's 304 to out
// confirmed, refreshed and stored again; a deny list the 304 brought may
// refuse the viewer, who is then forwarded on their own.
func (x *exchange) serveRevalidated(out *http.Request, stale *entry, of304 originFields, reqTime, fetched time.Time) error {
	x.c.metrics.hit(stale.layer, resultRevalidated)
	fresh := x.refresh(out, stale, x.w.Header(), of304, reqTime, fetched)
	clearHeader(x.w.Header())
	if !x.background && refused(x.r, fresh) {
		return x.forwardDenied()
	}
	x.serveStored(fresh, fresh.currentAge(fetched), &cacheStatus{fwd: fwdStale, fwdStatus: http.StatusNotModified, layer: stale.layer, detail: detailRevalidated})
	return nil
}

// refresh merges a 304's header fields into the stale entry, recomputes
// its freshness and stores it again (RFC 9111 §4.3.4) under its tags,
// unless a purge since the exchange's generation touched it. A deny list
// or Cache-Tags on the 304 replace the stored ones; without them the
// stored ones stay.
func (x *exchange) refresh(out *http.Request, stale *entry, h304 http.Header, of originFields, reqTime, respTime time.Time) *entry {
	merged := stale.fields().Clone()
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
	dec := decideStore(out, x.reqCC, stale.status, merged, *x.pol, reqTime, respTime)
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
		dec.tags = contract.AppendTags(nil, of.tags)
	} else {
		dec.tags = stale.tags()
	}
	dec.e.header = merged
	dec.e.body = stale.body
	x.store(out, &dec)
	return &dec.e
}

// refreshInBackground revalidates a stale entry once, off the request path,
// on a context that keeps the request's values but ends with the cache
// (Caddy cancels the request's own when the handler returns).
func (x *exchange) refreshInBackground() {
	// One refresh per variant owner: a user's private entry is not left
	// stale because another user's refresh of the URI is in flight.
	fk := "bg" + varySep + x.pk
	if cred := x.credential(); cred != "" {
		fk += varySep + cred
	}
	call, leader := x.c.flight.join(fk)
	if !leader {
		return
	}
	bg := x.forOrigin()
	bg.r = x.c.bg(x.r)
	bg.w = &discardWriter{h: make(http.Header)}
	bg.repl, bg.background = nil, true
	c := x.c
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.flight.leave(fk, call)
		ctx, cancel := c.backgroundContext(bg.r.Context())
		defer cancel()
		bg.r = bg.r.WithContext(ctx)
		if bg.r.Method == http.MethodHead {
			bg.r.Method = http.MethodGet
		}
		bg.gen = c.store.Generation() // before the lookup, as in prepare
		if e, _ := bg.lookup(); e != nil {
			_ = bg.revalidate(e)
		}
	}()
}
