package cache

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/internal/contract"
)

// fetchCoalesced fetches a miss from the origin. Concurrent misses for the
// same key (and the same credential) wait for the first one and then look
// again, so the origin sees one request (so does a miss that joins just
// after a fill of its key ended: see flights.joinAfter); a waiter whose lookup still misses
// (the response was not storable, or varies) fetches for itself, and one
// the stored response refuses is forwarded on its own.
func (x *exchange) fetchCoalesced() error {
	fk := x.pk
	if cred := x.credential(); cred != "" {
		fk += varySep + cred
	}
	call, leader, filled := x.c.flight.joinAfter(fk, x.fillsSeen)
	if filled {
		// A fill of this key ended after this request's lookup began:
		// it may have stored what the lookup missed (on a loaded machine
		// many requests look up before a fill's store and join after it
		// ended). Only then is there a second lookup: a true miss has none.
		if served, err := x.serveFilled(); served {
			return err
		}
		call, leader = x.c.flight.join(fk)
	}
	if !leader {
		select {
		case <-call.done:
		case <-x.r.Context().Done():
			return x.r.Context().Err()
		}
		if served, err := x.serveFilled(); served {
			return err
		}
		return x.fetch(x.r, nil)
	}
	// Waiters are released as soon as the response turns out not to be
	// stored (an event stream, a long poll, no-store): they fetch for
	// themselves instead of waiting for its end.
	var once sync.Once
	x.release = func() { once.Do(func() { x.c.flight.leave(fk, call) }) }
	defer x.release()
	return x.fetch(x.r, nil)
}

// serveFilled answers a waiter from the entry the fill it waited for
// stored, when there is a fresh one it may use; served reports whether it
// answered.
func (x *exchange) serveFilled() (served bool, err error) {
	x.gen = x.c.store.Generation() // before this lookup, as in prepare
	e, layer := x.lookup()
	if e == nil {
		return false, nil
	}
	if refused(x.r, e) {
		return true, x.forwardDenied()
	}
	age := e.currentAge(x.c.now())
	if usable(e, x.reqCC, age) != useFresh {
		return false, nil
	}
	x.c.metrics.hit(layer, resultHit)
	return true, x.serveHit(e, age, "coalesced")
}

// releaseWaiters frees the requests coalesced on this fill, if any.
func (x *exchange) releaseWaiters() {
	if x.release != nil {
		x.release()
	}
}

// fetch sends out (the client's request, or the conditional request that
// revalidates stale) through next, streaming the response to the client
// and storing it when allowed. The client's own conditionals, not the
// validators in out, decide whether the client gets a 304.
func (x *exchange) fetch(out *http.Request, stale *entry) error {
	c := x.c
	fwd := fwdMiss
	reqTime := c.now()
	var staleAge time.Duration
	if stale != nil {
		fwd, staleAge = fwdStale, stale.currentAge(reqTime)
	}
	var dec storeDecision
	var of304 originFields // the contract's fields of a 304 refreshing stale
	var behind uint64      // a purge position the response's replica read predates
	fw := &fillWriter{w: x.w, limit: c.maxEntry}
	fw.onHeader = func(status int, h http.Header) writeMode {
		of := c.takeOriginFields(out.Context(), h)
		sanitizeAge(h)
		if of.replica {
			if p := c.store.PurgedAt(contract.AppendTags(nil, of.tags)); p > of.readAt {
				if !x.readBehind {
					behind = p
					return modeCapture // asked again below; the client sees nothing of it
				}
				// Asked again at p, and still behind a newer purge: the
				// requester gets it, the cache keeps none of it.
				return x.passUnstored(h, fwd, "read-behind")
			}
		}
		if stale != nil {
			if status == http.StatusNotModified {
				of304 = of
				return modeCapture
			}
			if status >= 500 && stale.staleIfErrorOK(staleAge) {
				return modeCapture
			}
		}
		dec = decideStore(out, x.reqCC, status, h, *x.pol, reqTime, c.now())
		if dec.ok {
			saveDenyList(&dec, of.deny)
		}
		if !dec.ok {
			return x.passUnstored(h, fwd, dec.reason)
		}
		if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl > int64(c.maxEntry) {
			// Known to be over the limit: pass it through, and say so
			// rather than "stored".
			dec.ok = false
			return x.passUnstored(h, fwd, "too-large")
		}
		dec.e.header = storableHeader(h)
		report(h, x.repl, &cacheStatus{fwd: fwd, stored: true})
		dec.tags = contract.AppendTags(dec.tags, of.tags)
		if x.pol.etag && status == http.StatusOK && h.Get("Etag") == "" {
			return modeHold // the ETag is a hash of the whole body
		}
		return modeStore
	}
	err := x.next.ServeHTTP(fw, out)
	fetched := c.now()
	c.metrics.originFetch(fetched.Sub(reqTime))
	if behind != 0 && err == nil {
		// Read from a replica before a purge of its tags: the old data the
		// purge removed. Once more, telling the origin to read after the
		// purging write (its replica if caught up, else its primary).
		x.readBehind = true
		c.metrics.readBehindRefetch()
		clearHeader(x.w.Header()) // the captured answer's fields, as revalidation does
		return x.fetch(readingAfter(out, behind), stale)
	}

	if stale != nil {
		if err != nil && !fw.wroteHeader || fw.mode == modeCapture && fw.status != http.StatusNotModified {
			return x.serveStaleIfError(stale, staleAge, fw, fetched, err)
		}
		if fw.mode == modeCapture {
			return x.serveRevalidated(out, stale, of304, reqTime, fetched)
		}
	}
	c.metrics.request(resultMiss)
	if err != nil || !dec.ok {
		return err
	}
	body, complete := fw.body()
	if !complete {
		return nil
	}
	if fw.mode == modeHold {
		x.writeHeld(&dec, fw.status, body)
	}
	dec.e.body = body
	x.store(out, &dec)
	return nil
}

// readingAfter returns out asking the origin to read after WAL position p:
// its Spark-Read-After raised to p (a higher one it carries is kept).
func readingAfter(out *http.Request, p uint64) *http.Request {
	if cur, err := contract.ParsePosition(strings.TrimSpace(out.Header.Get(contract.ReadAfter))); err == nil && cur >= p {
		return out
	}
	again := out.Clone(out.Context())
	again.Header.Set(contract.ReadAfter, contract.FormatPosition(p))
	return again
}

// passUnstored lets a response the cache does not store through to the
// client, saying why, and frees the fill's waiters.
func (x *exchange) passUnstored(h http.Header, fwd fwdReason, reason string) writeMode {
	report(h, x.repl, &cacheStatus{fwd: fwd, detail: reason})
	x.releaseWaiters()
	return modePass
}

// writeHeld sends the client a response held back for its generated ETag
// (a strong one: a hash of the body), or a 304 when the client's
// conditional matches it.
func (x *exchange) writeHeld(dec *storeDecision, status int, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	dec.e.header.Set("Etag", etag)
	h := x.w.Header()
	h.Set("Etag", etag)
	if notModified(x.r, dec.e.header) {
		delete(h, "Content-Type")
		x.w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead {
		_, _ = x.w.Write(body)
	}
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

// store writes the decided entry (and the Vary record) for out, the
// request the origin answered, under the exchange's keys. A purge since
// the exchange's generation keeps it out.
func (x *exchange) store(out *http.Request, dec *storeDecision) {
	c := x.c
	if !dec.e.encodable() {
		c.logger.Debug("store response: too many header fields", zap.String("key", x.pk))
		return
	}
	ctx := out.Context()
	ttl := dec.e.fresh + max(dec.e.swr, 0) + max(dec.e.sie, 0) + time.Minute
	if dec.e.fresh <= 0 {
		ttl += time.Hour // kept for revalidation with its validators
	}
	dec.e.tagBlock = appendTags(nil, dec.tags)
	tags := append(dec.tags[:len(dec.tags):len(dec.tags)], x.uriTag())
	key := x.pk
	if len(dec.vary) > 0 || dec.perUser {
		rec := encodeVary(dec.vary, dec.perUser)
		c.hot.forget(x.pk)
		// Untagged: purges remove the variants (and count only them); a Vary
		// record pointing at removed variants just makes misses.
		if _, err := c.store.Set(ctx, x.pk, rec, ttl, nil, x.gen); err != nil {
			c.logger.Debug("store vary record", zap.String("key", x.pk), zap.Error(err))
			return
		}
		cred := ""
		if dec.perUser {
			cred = x.credential()
		}
		key = secondaryKey(x.pk, out.Header, dec.vary, cred, c.encodings)
	}
	b := encodeEntry(make([]byte, 0, 256+len(dec.e.body)), &dec.e)
	c.hot.forget(key)
	if _, err := c.store.Set(ctx, key, b, ttl, tags, x.gen); err != nil {
		c.logger.Debug("store response", zap.String("key", x.pk), zap.Error(err))
	}
}
