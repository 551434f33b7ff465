package origin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// problemType returns the type URI (relative, resolved against the API) for a
// short problem code.
func problemType(code string) string {
	if code == "" {
		return "about:blank"
	}
	return "/problems/" + code
}

// newProblem returns the problem for status and a short code.
func newProblem(r *http.Request, status int, code, detail string) Problem {
	p := Problem{Type: problemType(code), Title: http.StatusText(status), Status: status, Detail: detail}
	if r != nil {
		p.Instance = r.URL.Path
	}
	return p
}

// writeProblem sends a problem+json response; errors are never cached.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	writeProblemBody(w, status, newProblem(r, status, code, detail))
}

// writeProblemBody sends body, a Problem or a struct embedding one with
// extension members, as problem+json.
func writeProblemBody(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	h.Del(contract.CacheTags)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeError maps errors to problem details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	var gone *store.GoneError
	switch {
	case errors.As(err, &re):
		writeProblem(w, r, re.status, re.code, re.msg)
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such resource, or it is not yours")
	case errors.Is(err, store.ErrPreconditionFailed):
		writeProblem(w, r, http.StatusPreconditionFailed, "precondition-failed", "the resource changed since the ETag you sent; fetch it again")
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, http.StatusConflict, "conflict", "this contradicts what is already recorded")
	case errors.Is(err, store.ErrNoLocation):
		writeProblem(w, r, http.StatusConflict, "location-required", "set your location first: PUT /api/users/me/location")
	case errors.As(err, &gone):
		// An extension member says where the log stands.
		writeProblemBody(w, http.StatusGone, struct {
			Problem
			LastSeq int64 `json:"last_seq"`
		}{newProblem(r, http.StatusGone, "events-gone", "the events after since are not in the log (no longer kept, or since is beyond it): "+
			"refetch over the REST API, then follow events from last_seq"), gone.LastSeq})
	case errors.Is(err, store.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "invalid-request", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Error("request timed out", "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "timeout", "the request took too long")
	case unavailable(err):
		s.log.Warn("database unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "2")
		writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "the database is out of reach; retry shortly")
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "")
	}
}

// unavailable says whether err is the database out of reach — a connection
// refused, reset or cut (or one the driver had closed), PostgreSQL shutting
// down or starting up — rather
// than a fault of the request or the code: the client may retry (the chaos
// drill restarting PostgreSQL under load sees these as 503s, not 500s). The
// SQLSTATE is read through the method pgconn.PgError has, so the origin
// does not depend on the driver.
func unavailable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// The driver's word that the statement never reached the server
	// (pgconn: a connection it had already closed).
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		return true
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		// Class 08: connection exception; 57P01-57P03: admin or crash
		// shutdown, cannot connect now (starting up, recovering).
		code := pg.SQLState()
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	return false
}
