package origin

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// Request deadlines.
const (
	// RequestTimeout bounds every request but an upload.
	RequestTimeout = 10 * time.Second
	// UploadTimeout bounds a photo upload, body included: the edge streams
	// the body at the phone's pace, which the server's 15 s read timeout
	// would cut on a slow connection.
	UploadTimeout = 2 * time.Minute
)

type authedHandler func(w http.ResponseWriter, r *http.Request, me int64) error

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	for _, r := range s.authedRoutes() {
		s.handle(r.pattern, r.h)
	}
	if s.photos.Storage != nil {
		s.mux.HandleFunc("GET /api/users/{id}/photos/{photo}", s.getPhoto)
	}
	s.mux.HandleFunc(SendBatchPattern, s.sendBatch) // a token per message
}

// authedRoute is a pattern served by an authenticated handler.
type authedRoute struct {
	pattern string
	h       authedHandler
}

// authedRoutes returns the routes that need the caller's bearer token
// (the photo routes only when photos are stored).
func (s *Server) authedRoutes() []authedRoute {
	routes := []authedRoute{
		{"GET /api/users/{id}/profile", s.getProfile},
		{"PUT /api/users/me/profile", s.putProfile},
		{"PUT /api/users/{id}/profile", s.putProfile},
		{"GET /api/users/me/preferences", s.getPreferences},
		{"PUT /api/users/me/preferences", s.putPreferences},
		{"PUT /api/users/me/location", s.putLocation},
		{"PUT /api/users/me/devices", s.putDevice},
		{"DELETE /api/users/me/devices", s.deleteDevice},
		{"POST /api/users/{id}/block", s.block},
		{"GET /api/matches/suggestions", s.suggestions},
		{"POST /api/swipes", s.swipe},
		{"GET /api/matches", s.listMatches},
		{"DELETE /api/matches/{id}", s.unmatch},
		{"GET /api/conversations", s.listConversations},
		{"GET /api/conversations/{id}/messages", s.listMessages},
		{"POST /api/conversations/{id}/messages", s.sendMessage},
		{"POST /api/conversations/{id}/read", s.markRead},
		{"GET /api/events", s.listEvents},
	}
	if s.photos.Storage != nil {
		routes = append(routes,
			authedRoute{uploadPattern, s.uploadPhoto},
			authedRoute{"DELETE /api/users/me/photos/{photo}", s.deletePhoto})
	}
	return routes
}

// handle registers an authenticated handler; its error becomes a problem.
func (s *Server) handle(pattern string, h authedHandler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		me, err := s.auth.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required")
			return
		}
		if err := h(w, r, me); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// statusRecorder captures the status for metrics and makes every error
// response uncacheable, whoever wrote it (a handler's problem, the mux,
// http.ServeContent's 416).
// It also sends the request's read-your-writes position (Spark-Read-After)
// when the request's writes advanced it, and the replica position its reads
// were made at (Spark-Read-At).
type statusRecorder struct {
	http.ResponseWriter
	status  int
	session *store.Session // nil: none
	sent    store.Position // the position the request carried
}

// header adds Spark-Read-After when the request wrote (the position rose)
// or carried a position the primary has not reached (it was lowered to the
// primary's: the client replaces its value), and Spark-Read-At when a read
// used a replica.
func (r *statusRecorder) header() {
	if p := r.session.After(); p != r.sent {
		r.Header().Set(contract.ReadAfter, p.String())
	}
	if p, ok := r.session.ReplicaRead(); ok {
		r.Header().Set(contract.ReadAt, p.String())
	}
}

// WriteHeader records the first status. An error status (4xx, 5xx) goes out
// with Cache-Control: no-store and without the fields that would let a
// cache store, index or revalidate it (ETag, Last-Modified, Expires,
// Cache-Tags, Spark-Deny-Users).
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.header()
	}
	r.status = cmp.Or(r.status, code)
	if code >= 400 {
		h := r.Header()
		h.Set("Cache-Control", "no-store")
		for _, k := range []string{"ETag", "Last-Modified", "Expires", contract.CacheTags, contract.DenyUsers} {
			h.Del(k)
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Write records an implicit 200.
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.header()
	}
	r.status = cmp.Or(r.status, http.StatusOK)
	n, err := r.ResponseWriter.Write(b)
	if err != nil {
		return n, fmt.Errorf("write response: %w", err)
	}
	return n, nil
}

// ServeHTTP implements http.Handler: routing, timeouts, problem details for
// unknown routes and methods, latency metrics by route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.stream != nil && r.URL.Path == StreamPath {
		// A long-lived connection: no request deadline, no recorder in
		// the way of its upgrade.
		s.stream.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	h, pattern := s.mux.Handler(r)
	timeout := RequestTimeout
	if pattern == uploadPattern {
		timeout = UploadTimeout
		// Errors: not a net/http connection (tests); nothing to extend.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(start.Add(UploadTimeout))
		_ = rc.SetWriteDeadline(start.Add(UploadTimeout + 10*time.Second))
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	r = r.WithContext(ctx)
	rec := &statusRecorder{ResponseWriter: w}
	route := pattern
	switch {
	case !redirectable(r.Method) && r.URL.Path != cleanPath(r.URL.Path):
		// The mux would redirect to the cleaned path. A redirect answering
		// a write tells an edge the write "succeeded" at another URI (which
		// it then invalidates); never give one.
		route = "unmatched"
		writeProblem(rec, r, http.StatusNotFound, "not-found", "no resource at a non-canonical path (//, /./ or ..)")
	case pattern == "":
		// The mux's own 404/405: replay it to learn which, answer with a problem.
		probe := httptest.NewRecorder()
		h.ServeHTTP(probe, r)
		route = "unmatched"
		switch probe.Code {
		case http.StatusNotFound:
			writeProblem(rec, r, probe.Code, "not-found", "")
		case http.StatusMethodNotAllowed:
			rec.Header().Set("Allow", probe.Header().Get("Allow"))
			writeProblem(rec, r, probe.Code, "method-not-allowed", "")
		default: // the mux's redirects to the cleaned path (safe methods)
			for k, v := range probe.Header() {
				rec.Header()[k] = v
			}
			rec.WriteHeader(probe.Code)
			_, _ = rec.Write(probe.Body.Bytes())
		}
	default:
		after, err := readAfter(r.Header)
		if err != nil {
			writeProblem(rec, r, http.StatusBadRequest, "invalid-read-after", err.Error())
			break
		}
		rec.session, rec.sent = store.NewSession(after), after
		s.mux.ServeHTTP(rec, r.WithContext(store.WithSession(ctx, rec.session)))
	}
	rec.status = cmp.Or(rec.status, http.StatusOK)
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	s.metrics.HTTP.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
}

// readAfter is the read-your-writes position a request carries in
// Spark-Read-After (0: none); a malformed one is an error.
func readAfter(h http.Header) (store.Position, error) {
	v := h.Values(contract.ReadAfter)
	switch len(v) {
	case 0:
		return 0, nil
	case 1:
		p, err := contract.ParsePosition(strings.TrimSpace(v[0]))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", contract.ReadAfter, err)
		}
		return store.Position(p), nil
	}
	return 0, fmt.Errorf("%s: one position, not %d fields", contract.ReadAfter, len(v))
}

// cleanPath is the path http.ServeMux redirects a request to (its own
// unexported cleanPath): rooted, path.Clean'ed, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}

// redirectable reports whether a request with this method may be answered
// with the mux's redirect to the cleaned path: the safe methods only.
func redirectable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// methodLabel maps a request method to the metrics' method label: the
// methods the API knows, else OTHER, so clients cannot mint label values.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}
