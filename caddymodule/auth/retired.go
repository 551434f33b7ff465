package auth

import (
	"sync"

	"github.com/spark-edge/spark/internal/authtoken"
)

// liveHandlers holds the spark_auth handlers of the configs Caddy runs now:
// a handler joins when it is provisioned and leaves at its Cleanup, which
// Caddy calls on the old config's modules only after the new config runs.
//
// Why it exists: a reload returns before the old servers stop accepting.
// Caddy's http app starts each old server's Shutdown in a goroutine and
// returns without waiting for it to close the listener, and the new
// listener shares the port (SO_REUSEPORT), so for a moment after `caddy
// reload` returns a connection can still be accepted by an old server and
// its request checked with the old config's keys. Rotating a key out must
// not leave that moment open: a handler whose config was retired (Cleanup
// called) accepts a token only if a live handler accepts it too. With no
// live handler (the process is exiting) it keeps its own verdict, so the
// requests it finishes during the grace period are not refused.
//
// It is process-wide because configs come and go and the state must
// outlive each of them, as Caddy's own UsagePools do.
type liveHandlers struct {
	mu  sync.RWMutex
	set map[*Handler]struct{}
}

// live is the process's set; Provision and Cleanup keep it.
var live = &liveHandlers{set: make(map[*Handler]struct{})}

func (l *liveHandlers) add(h *Handler) {
	l.mu.Lock()
	l.set[h] = struct{}{}
	l.mu.Unlock()
}

func (l *liveHandlers) remove(h *Handler) {
	l.mu.Lock()
	delete(l.set, h)
	l.mu.Unlock()
}

// verify checks header with the live handlers' verifiers: the first
// identity one of them grants, or the first refusal when none does. ok is
// false when there is no live handler at all.
func (l *liveHandlers) verify(header string) (id authtoken.Identity, err error, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for h := range l.set {
		got, verr := h.verifier.Verify(header)
		if verr == nil {
			return got, nil, true
		}
		if err == nil {
			err = verr
		}
		ok = true
	}
	return authtoken.Identity{}, err, ok
}
