package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spark-edge/spark/internal/authtoken"
)

// Buffers of a connection (design/realtime.md: 1 KiB read and write
// buffers, the write buffer pooled between writes; no compression).
const (
	readBufferSize  = 1024
	writeBufferSize = 1024
)

// ServeHTTP implements caddyhttp.MiddlewareHandler: it verifies the
// token, upgrades to a spark.v1 WebSocket and returns; the connection
// runs on its own goroutines. Every request handed to it is its to answer:
// next is never called, and no error is returned (Caddy would log the
// request's headers with it, a token subprotocol included; access logs
// need the filter the README gives for the same reason).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeProblem(w, r, http.StatusUpgradeRequired, "a WebSocket upgrade (subprotocol "+Subprotocol+") is required")
		return nil
	}
	offered := websocket.Subprotocols(r)
	header, token, err := credentials(r.Header.Values("Authorization"), offered)
	var id authtoken.Identity
	if err == nil {
		if header != "" {
			id, err = h.verifier.Verify(header)
		} else {
			id, err = h.verifier.VerifyToken(token)
		}
	}
	if err != nil {
		h.refuse(w, r, err)
		return nil
	}
	if token == "" {
		token, _ = authtoken.BearerToken(header)
	}
	if !containsString(offered, Subprotocol) {
		writeProblem(w, r, http.StatusBadRequest, "offer the subprotocol "+Subprotocol+" in Sec-WebSocket-Protocol")
		return nil
	}
	if !h.origins.allows(r) {
		writeProblem(w, r, http.StatusForbidden, "this Origin may not open a realtime connection")
		return nil
	}
	since, resume, err := parseSince(r.URL.RawQuery)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return nil
	}

	// Admission: subscribe first, then ask the origin (no event falls
	// between), all within admission_timeout. An overloaded origin (or bus)
	// gets the client refused with a retry hint, not held.
	actx, cancel := context.WithTimeout(r.Context(), h.cfg.admission)
	defer cancel()
	defer context.AfterFunc(h.hub.stopping, cancel)() // the edge stops: give up at once
	c := newConn(h.hub, h.cfg, id.UserID, token, since, resume)
	if err := h.hub.register(actx, c); err != nil {
		c.cancel()
		h.unavailable(w, r, id.UserID, h.admissionCause(admissionBus), err)
		return nil
	}
	// A handler a reload retired (an old server may still be handed this
	// request after the reload returned) admits only what a running
	// config's handler admits too. Checked once c is registered: a
	// retirement after this point finds c in the hub (recheckTokens).
	if h.retired.Load() {
		if err, ok := h.hub.live.verify(token); ok && err != nil {
			h.hub.unregister(c)
			c.cancel()
			h.refuse(w, r, err)
			return nil
		}
	}
	convs, err := h.cfg.origin.conversations(actx, token)
	if err == nil {
		if resume {
			// The replay's first page before the upgrade: a resume the
			// origin cannot serve now is refused, not held open.
			err = c.prefetch(actx)
		} else {
			// Live only: from the log's end as of now, learnt before the
			// handshake ends, so a message stored after the client holds
			// its connection is never taken for an older one.
			err = c.learnLogEnd(actx)
		}
	}
	if err != nil {
		h.hub.unregister(c)
		c.cancel()
		if statusOf(err) == http.StatusUnauthorized {
			h.refuse(w, r, err)
		} else {
			h.unavailable(w, r, id.UserID, h.admissionCause(admissionOrigin), err)
		}
		return nil
	}
	if cr := c.closeRequested(); cr.code == closeTokenRefused || cr.code == closeTokenExpired {
		// A reload retired the token's key during the admission.
		h.hub.unregister(c)
		c.cancel()
		h.refuse(w, r, errTokenRetired)
		return nil
	}
	c.peers.load(convs)
	up := websocket.Upgrader{
		ReadBufferSize:  readBufferSize,
		WriteBufferSize: writeBufferSize,
		WriteBufferPool: h.hub.writeBuffers,
		Subprotocols:    []string{Subprotocol},
		CheckOrigin:     func(*http.Request) bool { return true }, // checked above
		Error: func(w http.ResponseWriter, r *http.Request, status int, err error) {
			writeProblem(w, r, status, err.Error())
		},
	}
	ws, err := up.Upgrade(hijacker{w}, r, nil)
	if err != nil {
		// Answered (or the connection is gone). No error goes back to
		// Caddy: its error log would print the request's headers, a token
		// subprotocol included.
		h.hub.unregister(c)
		c.cancel()
		return nil
	}
	if resume {
		h.metrics.resumes.Inc()
	}
	c.start(ws, id.ExpiresAt)
	return nil
}

// errSeveralCredentials refuses a request with more than one credential
// (two Authorization fields, two token subprotocols, or one of each).
var errSeveralCredentials = &authtoken.Error{Reason: authtoken.ReasonMalformed}

// errTokenRetired refuses a request whose token a reload's new config
// refused during its admission.
var errTokenRetired = &authtoken.Error{Reason: authtoken.ReasonUnknownKey}

// errNoCredential refuses a request without a credential.
var errNoCredential = &authtoken.Error{Reason: authtoken.ReasonMissing}

// credentials finds the request's one credential: an Authorization field
// value (header), or a token subprotocol's token.
func credentials(authorization, offered []string) (header, token string, err error) {
	for _, p := range offered {
		if t, ok := strings.CutPrefix(p, tokenSubprotocolPrefix); ok {
			if token != "" {
				return "", "", errSeveralCredentials
			}
			if token = t; token == "" {
				return "", "", errSeveralCredentials
			}
		}
	}
	switch {
	case len(authorization) > 1 || (len(authorization) == 1 && token != ""):
		return "", "", errSeveralCredentials
	case len(authorization) == 1:
		return authorization[0], "", nil
	case token != "":
		return "", token, nil
	}
	return "", "", errNoCredential
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseSince reads ?since=N: absent (live only) or a non-negative integer.
func parseSince(rawQuery string) (since int64, resume bool, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, false, errors.New("the query does not parse")
	}
	vals, ok := q["since"]
	if !ok {
		return 0, false, nil
	}
	if len(vals) != 1 {
		return 0, false, errors.New("since: give it once")
	}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil || n < 0 {
		return 0, false, errors.New("since: want the last acknowledged seq, a non-negative integer")
	}
	return n, true, nil
}

// What refused an admission, for the problem's detail and
// spark_websocket_admissions_refused_total.
const (
	admissionBus    = "bus"
	admissionOrigin = "origin"
)

// admissionStopping: the edge began to stop during the admission.
const admissionStopping = "stopping"

// admissionCause is cause, or admissionStopping when the hub stops.
func (h *Handler) admissionCause(cause string) string {
	if h.hub.stopping.Err() != nil {
		return admissionStopping
	}
	return cause
}

// Retry-After of a refused admission: spread over [1, 1+retrySpread) s so
// the clients an overload refused do not all come back in the same second.
const retrySpread = 3

// unavailable answers 503 with a retry hint: the bus or the origin failed
// or did not answer within admission_timeout.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, user int64, what string, err error) {
	h.logger.Warn("realtime connection refused", zap.Int64("user", user), zap.String("cause", what), zap.Error(err))
	h.metrics.refused(what)
	after := 1 + rand.N(retrySpread)
	w.Header().Set("Retry-After", strconv.Itoa(after))
	writeProblem(w, r, http.StatusServiceUnavailable, refusalDetail(what, err, after))
}

// refusalDetail says why a connection was refused and when to come back.
func refusalDetail(what string, err error, after int) string {
	why := "the event bus is unavailable"
	if what == admissionStopping {
		return "the edge is stopping: connect to another one now with the same since (nothing is lost)"
	}
	if what == admissionOrigin {
		switch st := statusOf(err); {
		case errors.Is(err, context.DeadlineExceeded):
			why = "the origin is overloaded (no answer within admission_timeout)"
		case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
			why = "the origin is overloaded (it answered " + strconv.Itoa(st) + ")"
		case st != 0:
			why = "the origin failed (it answered " + strconv.Itoa(st) + ")"
		default:
			why = "the origin is unreachable"
		}
	}
	return why + ": retry in " + strconv.Itoa(after) + " s with the same since (nothing is lost)"
}

// refuse answers 401 as spark_auth and the origin do. The log line says
// why, never what the token was.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if c := h.logger.Check(zapcore.DebugLevel, "realtime token refused"); c != nil {
		c.Write(zap.String("reason", string(authtoken.ReasonOf(err))), zap.String("remote_ip", r.RemoteAddr))
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeProblem(w, r, http.StatusUnauthorized, "a valid bearer token is required: Authorization, or the subprotocol "+tokenSubprotocolPrefix+"<token>")
}

// writeProblem answers an RFC 9457 problem document in the origin's shape.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	body, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status),
		"status": status, "detail": detail, "instance": r.URL.Path})
	hdr := w.Header()
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// originPolicy is the allowed_origins check.
type originPolicy struct {
	any     bool
	allowed map[string]bool // scheme://host[:port], lower case
}

func newOriginPolicy(list []string) (originPolicy, error) {
	p := originPolicy{allowed: make(map[string]bool, len(list))}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return p, fmt.Errorf("%q: want scheme://host[:port] or *", o)
		}
		p.allowed[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return p, nil
}

// allows reports whether r's Origin may connect: none (not a browser),
// the request's own host, a listed origin, or any with "*".
func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || p.allowed[strings.ToLower(u.Scheme+"://"+u.Host)]
}

// hijacker gives gorilla the client's connection from the innermost
// response writer, under Caddy's wrappers. The connection outlives
// ServeHTTP (it runs on its own goroutines), so it must not pass through
// the byte counting of Caddy's response recorder, which is read when
// ServeHTTP returns.
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w := h.ResponseWriter
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return http.NewResponseController(w).Hijack()
}
