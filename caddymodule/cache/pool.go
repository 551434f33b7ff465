package cache

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/tiered"
)

// pool holds each named cache's storage and metrics across config reloads.
var pool = caddy.NewUsagePool()

// pooled is the state of one named cache that outlives a config.
type pooled struct {
	name    string
	store   *tiered.Cache
	metrics *metrics
	// hot holds the decoded copies of hit records, shared by every config
	// using the store (a store by one drops the copies all of them read).
	hot *hotEntries
	// token is the purge token of the most recently loaded config.
	token atomic.Pointer[string]
	// cache is the most recently provisioned handler's logic (its rules
	// normalize purge keys).
	cache atomic.Pointer[Cache]
}

// Destruct frees the storage when no config uses the cache any more.
func (p *pooled) Destruct() error { return p.store.Close() }

// checkToken reports whether the request's bearer token equals the
// cache's purge token. An unset token matches nothing.
func (p *pooled) checkToken(r *http.Request) bool {
	want := p.token.Load()
	if want == nil || *want == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(*want)) == 1
}
