package deck

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// Results of spark_deck_warms_total.
const (
	warmQueued  = "queued"  // handed to a slot
	warmDeduped = "deduped" // the same variant was already queued or warming
	warmDropped = "dropped" // the queue was full
	warmStored  = "stored"  // answered 200, not from the cache: now stored
	warmHit     = "hit"     // already in the cache
	warmFailed  = "failed"  // any other answer, or none by the timeout
	// warmUncached: answered 200 but the cache kept nothing (its
	// Cache-Status names no hit and no "stored": a private answer the
	// route's rule does not store, say).
	warmUncached = "uncached"
)

// warmer fetches requests through the Caddy server in the background: at
// most concurrency at once, at most queue waiting or running, each key
// (a photo's variant, a card's profile) once at a time.
type warmer struct {
	slots   chan struct{}
	queue   int
	timeout time.Duration

	mu       sync.Mutex
	inflight map[string]struct{}
}

func newWarmer(concurrency, queue int, timeout time.Duration) *warmer {
	return &warmer{slots: make(chan struct{}, concurrency), queue: queue, timeout: timeout,
		inflight: make(map[string]struct{})}
}

// Destruct implements caddy.Destructor: warms still running end by their
// timeout.
func (wm *warmer) Destruct() error { return nil }

// enqueue starts serving req through serve in the background unless a
// request of the same key is queued or running, and returns warmQueued,
// warmDeduped or warmDropped. done is called with the warm's result when
// it has one.
func (wm *warmer) enqueue(serve http.Handler, key string, req *http.Request, done func(result string)) string {
	wm.mu.Lock()
	if _, ok := wm.inflight[key]; ok {
		wm.mu.Unlock()
		return warmDeduped
	}
	if len(wm.inflight) >= wm.queue {
		wm.mu.Unlock()
		return warmDropped
	}
	wm.inflight[key] = struct{}{}
	wm.mu.Unlock()

	go func() {
		wm.slots <- struct{}{}
		// req's context values (not its cancellation) ride along: a warm
		// of the next page is marked in them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), wm.timeout)
		result := wm.fetch(ctx, serve, req)
		cancel()
		<-wm.slots
		wm.mu.Lock()
		delete(wm.inflight, key)
		wm.mu.Unlock()
		done(result) // after the key left the set: a warm counted done can be queued again
	}()
	return warmQueued
}

// photoKey is the in-flight key of a photo preload: its path and variant.
func photoKey(p Preload) string { return p.Path + " " + p.Variant.String() }

// warmRequest is the GET of p's URL a client with r's host would send with
// an Accept naming only the variant's format: no credentials, no cookies,
// no other field of r, so only what is public can be fetched and stored.
func warmRequest(r *http.Request, p Preload) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, p.URL(), nil) // a checked path and two numbers: always parses
	req.Host = r.Host
	req.URL.Host = r.Host
	req.URL.Scheme = "http"
	req.RemoteAddr = r.RemoteAddr
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header.Set("Accept", p.Variant.Format.ContentType())
	return req
}

// fetch serves req through serve and classifies the answer.
func (wm *warmer) fetch(ctx context.Context, serve http.Handler, req *http.Request) (result string) {
	defer func() {
		if v := recover(); v != nil {
			result = warmFailed // reverse_proxy aborts (http.ErrAbortHandler) when a write fails
		}
	}()
	var dw discardWriter
	serve.ServeHTTP(&dw, req.WithContext(ctx))
	switch {
	case dw.status != http.StatusOK && dw.status != 0:
		return warmFailed
	case ctx.Err() != nil:
		return warmFailed
	}
	switch cs := dw.header.Get(contract.CacheStatus); {
	case contract.IsCacheHit(cs):
		return warmHit
	case cs != "" && !strings.Contains(cs, "stored"):
		return warmUncached
	}
	return warmStored
}

// discardWriter keeps a warm's status and header and drops its body.
type discardWriter struct {
	header http.Header
	status int
}

// Header returns the header map the route fills.
func (d *discardWriter) Header() http.Header {
	if d.header == nil {
		d.header = make(http.Header)
	}
	return d.header
}

// WriteHeader keeps the first final status.
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 && code >= 200 {
		d.status = code
	}
}

// Write drops the body.
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
