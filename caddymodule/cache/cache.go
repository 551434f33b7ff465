package cache

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/tiered"
)

// Bounds of background refreshes (stale-while-revalidate).
const (
	// refreshTimeout ends a background refresh the origin does not answer.
	refreshTimeout = 30 * time.Second
	// closeWait is the longest Close waits for cancelled refreshes to
	// return (they return at once unless a handler after the cache ignores
	// its context).
	closeWait = time.Second
)

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
	// bg copies a request for a background refresh: its values without
	// the client's cancellation.
	bg     func(r *http.Request) *http.Request
	flight flights
	// identity is the placeholder (without braces) holding the verified
	// user a private variant is keyed by; empty: the credential's hash.
	identity string
	// hot holds decoded copies of the records hits were served from
	// (shared by the caches of one store).
	hot *hotEntries
	// life ends when the cache is closed, and with it every background
	// refresh.
	life    context.Context
	endLife context.CancelFunc
	wg      sync.WaitGroup
}

// newCache builds the cache logic over a store. The rules' matchers are
// provisioned already (or the rules give a Path).
func newCache(store *tiered.Cache, m *metrics, logger *zap.Logger, def Policy, rules []Rule, encodings []string, maxEntry int) *Cache {
	life, end := context.WithCancel(context.Background())
	c := &Cache{
		store:     store,
		def:       resolve(def, Policy{}),
		encodings: encodings,
		maxEntry:  maxEntry,
		metrics:   m,
		logger:    logger,
		now:       time.Now,
		bg:        func(r *http.Request) *http.Request { return r.Clone(context.WithoutCancel(r.Context())) },
		life:      life,
		endLife:   end,
	}
	if store != nil { // tests of policies alone have none
		c.hot = newHotEntries(store.Capacity())
	}
	for i := range rules {
		c.rules = append(c.rules, compiledRule{match: rules[i].matchers(), pol: resolve(rules[i].Policy, def)})
	}
	return c
}

// isSafe reports the methods RFC 9110 §9.2.1 defines as safe. Any other
// method, registered or not, may change state: RFC 9111 §4.4 has a cache
// invalidate after one of unknown safety as after an unsafe one.
func isSafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// ServeHTTP answers r from the cache or through next.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok { // outside Caddy's server: matchers and placeholders need one
		r = withReplacer(r)
		repl = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	}
	x := exchange{c: c, w: w, r: r, next: next, repl: repl}
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		if !isSafe(r.Method) {
			return x.serveUnsafe()
		}
		c.metrics.request(resultBypass)
		return x.passThrough(&cacheStatus{fwd: fwdBypass, detail: "method"})
	case len(r.Header["Upgrade"]) > 0:
		return x.passThrough(nil) // WebSocket and friends: untouched
	case len(r.Header["Range"]) > 0:
		c.metrics.request(resultBypass)
		return x.passThrough(&cacheStatus{fwd: fwdBypass, detail: "range"})
	}
	if err := x.prepare(); err != nil {
		return err
	}
	return x.serve()
}

// backgroundContext returns the context of a background refresh: parent's
// values, ended by the cache's Close or after refreshTimeout.
func (c *Cache) backgroundContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), refreshTimeout)
	stop := context.AfterFunc(c.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// Wait blocks until background refreshes have finished.
func (c *Cache) Wait() { c.wg.Wait() }

// Close cancels the background refreshes and waits for them to return, at
// most closeWait: a config reload never waits on the origin.
func (c *Cache) Close() {
	c.endLife()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.logger.Warn("background refreshes still running after their context ended")
	}
}
