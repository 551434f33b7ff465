package realtime

import (
	"sync"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/internal/authtoken"
)

// liveVerifiers are the token verifiers of the spark_realtime handlers
// sharing a hub whose configs Caddy runs now: a handler joins at Provision
// and leaves at Cleanup, which Caddy calls on the old config's modules only
// once the new config runs (a config that fails to load is cleaned up
// without ever having run: the old handlers stay).
//
// Why: connections outlive configs (the hub survives reloads), and a
// connection's token was checked only by the config that accepted it. When
// a reload retires a key (or changes issuer or audience), the connections
// whose tokens no running config accepts any more are ended
// (hub.recheckTokens), and an old config's handler, which may still be
// handed an upgrade in the moment after a reload returned (Caddy returns
// before the old servers stop serving: see caddymodule/auth/retired.go),
// accepts a token only if a running config's handler does too.
type liveVerifiers struct {
	mu  sync.RWMutex
	set map[*Handler]*authtoken.Verifier
}

func (l *liveVerifiers) add(h *Handler, v *authtoken.Verifier) {
	l.mu.Lock()
	if l.set == nil {
		l.set = make(map[*Handler]*authtoken.Verifier)
	}
	l.set[h] = v
	l.mu.Unlock()
}

func (l *liveVerifiers) remove(h *Handler) {
	l.mu.Lock()
	delete(l.set, h)
	l.mu.Unlock()
}

// verify checks tok with the live verifiers: nil when one of them accepts
// it, else the first refusal. ok is false when no handler is live (the
// process is exiting, or the hub's last config goes): then nothing is
// decided here.
func (l *liveVerifiers) verify(tok string) (err error, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, v := range l.set {
		_, verr := v.VerifyToken(tok)
		if verr == nil {
			return nil, true
		}
		if err == nil {
			err = verr
		}
		ok = true
	}
	return err, ok
}

// tokenRetiredReason is the close reason of a connection whose token the
// running config no longer accepts (its key retired, issuer or audience
// changed).
const tokenRetiredReason = "token no longer accepted (key retired); get a new token"

// closeForRefusal is how a connection whose token err refuses ends: 4001
// when it expired, else 4003.
func closeForRefusal(err error) closeRequest {
	if authtoken.ReasonOf(err) == authtoken.ReasonExpired {
		return closeRequest{code: closeTokenExpired, reason: tokenExpiredReason, send: true}
	}
	return closeRequest{code: closeTokenRefused, reason: tokenRetiredReason, send: true}
}

// recheckTokens ends every connection whose token no live handler
// accepts (called when a handler leaves, i.e. its config was replaced).
// Connections not yet upgraded are marked: their handler refuses them
// with 401 instead of upgrading.
func (h *hub) recheckTokens() {
	var conns []*conn
	h.all(func(c *conn) { conns = append(conns, c) })
	ended := 0
	for _, c := range conns {
		err, ok := h.live.verify(c.token)
		if !ok {
			return // no config runs: the hub stops, or the process exits
		}
		if err != nil && c.requestClose(closeForRefusal(err)) {
			ended++
		}
	}
	if ended > 0 {
		h.logger.Info("connections whose tokens the new config refuses were closed", zap.Int("connections", ended), zap.Int("checked", len(conns)))
	}
}
