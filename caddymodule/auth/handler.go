package auth

import (
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spark-edge/spark/caddymodule/internal/problem"
	"github.com/spark-edge/spark/internal/authtoken"
)

// ServeHTTP implements caddyhttp.MiddlewareHandler: a CORS preflight passes
// unauthenticated; any other request needs exactly one Authorization field
// with a bearer token that verifies, or it is answered 401 here and nothing
// after this handler runs (no cache lookup, no origin request).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if isPreflight(r) {
		h.metrics.preflight.Inc()
		return next.ServeHTTP(w, r)
	}
	id, err := h.authenticate(r)
	if err != nil {
		h.refuse(w, r, err)
		return nil
	}
	h.metrics.accepted.Inc()
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(UserIDPlaceholder, h.ids.value(id.UserID, id.Subject))
	}
	return next.ServeHTTP(w, r)
}

// errSeveralCredentials refuses a request with more than one Authorization
// field: which one the origin would read is not ours to guess.
var errSeveralCredentials = &authtoken.Error{Reason: authtoken.ReasonMalformed}

// authenticate verifies the request's one Authorization field. A retired
// handler's grant must be confirmed by a live one (see liveHandlers).
func (h *Handler) authenticate(r *http.Request) (authtoken.Identity, error) {
	var header string
	switch vals := r.Header["Authorization"]; len(vals) {
	case 0:
	case 1:
		header = vals[0]
	default:
		return authtoken.Identity{}, errSeveralCredentials
	}
	id, err := h.verifier.Verify(header)
	if err != nil || !h.retired.Load() {
		return id, err
	}
	if liveID, liveErr, ok := live.verify(header); ok {
		return liveID, liveErr
	}
	return id, nil
}

// isPreflight reports a CORS preflight (Fetch: an OPTIONS request with
// Origin and Access-Control-Request-Method). Browsers send it without
// credentials, so it cannot carry a token.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// refuse answers 401 with a problem document in the origin's shape. The
// log line says why, never what the token was.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	reason := authtoken.ReasonOf(err)
	h.metrics.refused(reason).Inc()
	if c := h.logger.Check(zapcore.DebugLevel, "bearer token refused"); c != nil {
		c.Write(zap.String("reason", string(reason)), zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("remote_ip", r.RemoteAddr))
	}
	writeUnauthorized(w, r)
}

// writeUnauthorized writes the origin's 401 for a missing or invalid token:
// application/problem+json, WWW-Authenticate Bearer error="invalid_token",
// Cache-Control no-store.
func writeUnauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	problem.Write(w, problem.Doc{Type: "/problems/unauthenticated", Title: http.StatusText(http.StatusUnauthorized),
		Status: http.StatusUnauthorized, Detail: "a valid bearer token is required", Instance: r.URL.Path})
}

// idValues boxes each user id's decimal text into an interface value once,
// so setting the placeholder on a memo hit allocates nothing: a direct
// mapped table of the last id seen per slot.
type idValues struct {
	slots [4096]atomic.Pointer[idValue]
}

type idValue struct {
	id int64
	v  any
}

// value returns text (the decimal of id) as an interface value.
func (c *idValues) value(id int64, text string) any {
	s := &c.slots[uint64(id)%uint64(len(c.slots))]
	if p := s.Load(); p != nil && p.id == id {
		return p.v
	}
	p := &idValue{id: id, v: text}
	s.Store(p)
	return p.v
}
