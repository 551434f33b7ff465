// Package origin is the Spark origin API: matching, swipes, profiles, chat and
// location over a store.Store (PostGIS or the embedded memory store). It
// states cacheability to Spark edges with standard headers plus Cache-Tags
// and Spark-Purge. It never imports Caddy or the edge modules.
package origin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// List view limits.
const (
	DefaultSuggestionLimit = 20
	MaxSuggestionLimit     = 100
	DefaultMessageLimit    = 50
	MaxMessageLimit        = 100
	ListBioRunes           = 140
	RequestTimeout         = 10 * time.Second
	// UploadTimeout bounds a photo upload, body included: the edge streams
	// the body at the phone's pace, which the server's 15 s read timeout
	// would cut on a slow connection.
	UploadTimeout = 2 * time.Minute
)

// Server is the origin's HTTP API.
type Server struct {
	store     store.Store
	storeName string
	auth      *Authenticator
	metrics   *Metrics
	log       *slog.Logger
	mux       *http.ServeMux
	photos    PhotoOptions
	uploads   chan struct{} // one token per upload in flight
	locLimit  *userLimiter  // nil: location updates unlimited
}

// ServerOptions configures NewServer.
type ServerOptions struct {
	Store     store.Store
	StoreName string // metric label: "memory" or "postgis"
	Auth      *Authenticator
	Metrics   *Metrics // nil: NewMetrics(store if it is a PoolStater)
	Logger    *slog.Logger
	Photos    PhotoOptions // uploads; without a Storage the photo routes answer 404
	// LocationLimit bounds PUT /api/users/me/location per user; nil:
	// DefaultLocationLimit, Every 0: no limit (load tests).
	LocationLimit *RateLimit
}

// NewServer wires the routes.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("origin: server needs a store and an authenticator")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(poolStaterFor(o.Store))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StoreName == "" {
		o.StoreName = "store"
	}
	if err := o.Photos.withDefaults(); err != nil {
		return nil, err
	}
	ll := DefaultLocationLimit
	if o.LocationLimit != nil {
		ll = *o.LocationLimit
	}
	lim, err := newUserLimiter(ll, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{store: o.Store, storeName: o.StoreName, auth: o.Auth, metrics: o.Metrics, log: o.Logger, mux: http.NewServeMux(),
		photos: o.Photos, uploads: make(chan struct{}, o.Photos.MaxInFlight), locLimit: lim}
	s.routes()
	return s, nil
}

// Metrics returns the server's collectors.
func (s *Server) Metrics() *Metrics { return s.metrics }

type authedHandler func(w http.ResponseWriter, r *http.Request, me int64) error

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	s.handle("GET /api/users/{id}/profile", s.getProfile)
	s.handle("PUT /api/users/me/profile", s.putProfile)
	s.handle("GET /api/users/me/preferences", s.getPreferences)
	s.handle("PUT /api/users/me/preferences", s.putPreferences)
	s.handle("PUT /api/users/me/location", s.putLocation)
	if s.photos.Storage != nil {
		s.handle(uploadPattern, s.uploadPhoto)
		s.handle("DELETE /api/users/me/photos/{photo}", s.deletePhoto)
		s.mux.HandleFunc("GET /api/users/{id}/photos/{photo}", s.getPhoto)
	}
	s.handle("POST /api/users/{id}/block", s.block)
	s.handle("GET /api/matches/suggestions", s.suggestions)
	s.handle("POST /api/swipes", s.swipe)
	s.handle("GET /api/matches", s.listMatches)
	s.handle("DELETE /api/matches/{id}", s.unmatch)
	s.handle("GET /api/conversations", s.listConversations)
	s.handle("GET /api/conversations/{id}/messages", s.listMessages)
	s.handle("POST /api/conversations/{id}/messages", s.sendMessage)
	s.handle("POST /api/conversations/{id}/read", s.markRead)
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
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first status. An error status (4xx, 5xx) goes out
// with Cache-Control: no-store and without the fields that would let a
// cache store, index or revalidate it (ETag, Last-Modified, Expires,
// Cache-Tags, Spark-Deny-Users).
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
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
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	if err != nil {
		return n, fmt.Errorf("write response: %w", err)
	}
	return n, nil
}

// ServeHTTP implements http.Handler: routing, timeouts, problem details for
// unknown routes and methods, latency metrics by route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		s.mux.ServeHTTP(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	s.metrics.HTTP.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
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

// writeError maps errors to problem details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
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
	case errors.Is(err, store.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "invalid-request", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Error("request timed out", "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "timeout", "the request took too long")
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "")
	}
}

// writeJSON sends v as JSON (with a final newline) and status. Nothing is
// written when v cannot be encoded.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) // net/http buffers: two writes, no copy into a longer slice
	_, _ = io.WriteString(w, "\n")
	return nil
}

func privateNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Vary", "Authorization")
}

// setPurge asks every edge to drop the entries carrying any of tags.
func setPurge(w http.ResponseWriter, tags ...string) {
	w.Header().Set(contract.SparkPurge, contract.JoinTags(tags...))
}

// profileTags are the tags of user id's profile (and what changes it).
func profileTags(id int64) []string {
	return []string{contract.UserTag(id), contract.ProfileTag(id)}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "not-ready", "database unreachable")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "store": s.storeName})
}

// --- profiles ---

func profileETag(p store.Profile) string { return fmt.Sprintf(`"u%d-v%d"`, p.ID, p.Version) }

// matchIfMatch evaluates an If-Match value against the resource id: it
// returns the version to require (0 for "*"), or ErrPreconditionFailed when
// no listed entity tag can be ours (weak tags never match: strong comparison).
func matchIfMatch(header string, id int64) (int64, error) {
	header = strings.TrimSpace(header)
	if header == "*" {
		return 0, nil
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		var uid, ver int64
		if strings.HasPrefix(tag, "W/") {
			continue
		}
		if n, err := fmt.Sscanf(tag, `"u%d-v%d"`, &uid, &ver); err == nil && n == 2 && uid == id && ver > 0 &&
			tag == fmt.Sprintf(`"u%d-v%d"`, uid, ver) {
			return ver, nil
		}
	}
	return -1, fmt.Errorf("If-Match %q: %w", header, store.ErrPreconditionFailed)
}

type profileJSON struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Age    int16    `json:"age"`
	Gender string   `json:"gender"`
	Bio    string   `json:"bio"`
	Photos []string `json:"photos"`
	Active bool     `json:"active"`
}

func toProfileJSON(p store.Profile) profileJSON {
	return profileJSON{ID: p.ID, Name: p.Name, Age: p.Age, Gender: p.Gender, Bio: p.Bio, Photos: photoList(p), Active: p.Active}
}

// getProfile is GET /api/users/{id}/profile. Who may read it, and how an
// edge may keep it:
//   - the owner (by number or "me"): always, also when inactive; private,
//     no-cache, Vary: Authorization.
//   - anyone else: only an active profile whose owner is not in a block
//     relation with them (404 otherwise, like a missing user). The answer is
//     public, max-age=300, with Spark-Deny-Users listing the users in a
//     block relation with the owner, whom an edge must never serve it to;
//     past contract.MaxDenyUsers of them it is private, no-cache, Vary:
//     Authorization instead, so every use comes back here.
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, me int64) error {
	id := me
	if v := r.PathValue("id"); v != "me" {
		var err error
		if id, err = parseID("user id", v); err != nil {
			return err
		}
	}
	p, err := s.store.GetProfile(r.Context(), id)
	if err != nil {
		return fmt.Errorf("get profile %d: %w", id, err)
	}
	self := id == me
	if !p.Active && !self {
		return fmt.Errorf("profile %d inactive: %w", id, store.ErrNotFound)
	}
	var deny []int64
	if !self {
		if deny, err = s.store.BlockedWith(r.Context(), id, contract.MaxDenyUsers+1); err != nil {
			return fmt.Errorf("get profile %d: %w", id, err)
		}
		blocked := slices.Contains(deny, me)
		if len(deny) > contract.MaxDenyUsers {
			// The list was cut: ask about this viewer alone.
			if blocked, err = s.store.Blocked(r.Context(), id, me); err != nil {
				return fmt.Errorf("get profile %d: %w", id, err)
			}
		}
		if blocked {
			return fmt.Errorf("profile %d for %d: block: %w", id, me, store.ErrNotFound)
		}
	}
	etag := profileETag(p)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set(contract.CacheTags, contract.JoinTags(profileTags(id)...))
	switch {
	case self || len(deny) > contract.MaxDenyUsers:
		h.Set("Cache-Control", "private, no-cache")
		h.Set("Vary", "Authorization")
	default:
		h.Set("Cache-Control", "public, max-age=300")
		if len(deny) > 0 {
			h.Set(contract.DenyUsers, formatIDs(deny))
		}
	}
	if contract.MatchETagList(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, toProfileJSON(p))
}

// formatIDs writes ids in decimal, space-separated.
func formatIDs(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request, me int64) error {
	up, err := decodeRequest(w, r, func(b []byte) (store.ProfileUpdate, error) { return DecodeProfile(me, b) })
	if err != nil {
		return err
	}
	var ifVersion int64
	if im := r.Header.Get("If-Match"); im != "" {
		v, err := matchIfMatch(im, me)
		if err != nil {
			return err
		}
		ifVersion = v
	}
	p, err := s.store.UpdateProfile(r.Context(), me, up, ifVersion)
	if err != nil {
		return fmt.Errorf("update profile %d: %w", me, err)
	}
	privateNoStore(w)
	w.Header().Set("ETag", profileETag(p))
	setPurge(w, profileTags(me)...)
	return writeJSON(w, http.StatusOK, toProfileJSON(p))
}

// --- preferences and location ---

func (s *Server) getPreferences(w http.ResponseWriter, r *http.Request, me int64) error {
	p, err := s.store.GetPreferences(r.Context(), me)
	if err != nil {
		return fmt.Errorf("get preferences %d: %w", me, err)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Header().Set("Vary", "Authorization")
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) putPreferences(w http.ResponseWriter, r *http.Request, me int64) error {
	p, err := decodeRequest(w, r, DecodePreferences)
	if err != nil {
		return err
	}
	if err := s.store.PutPreferences(r.Context(), me, p); err != nil {
		return fmt.Errorf("put preferences %d: %w", me, err)
	}
	privateNoStore(w)
	setPurge(w, contract.SuggestionsTag(me))
	return writeJSON(w, http.StatusOK, p)
}

// putLocation is PUT /api/users/me/location: rate-limited per user (429
// with Retry-After past the limit), stored coarsely (the store keeps a grid
// cell's centre, see store.Store.SetLocation). The answer is the point now
// stored; a report that kept it purges nothing.
func (s *Server) putLocation(w http.ResponseWriter, r *http.Request, me int64) error {
	pt, err := decodeRequest(w, r, DecodeLocation)
	if err != nil {
		return err
	}
	if ok, wait := s.locLimit.allow(me); !ok {
		secs := int64(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return &requestError{status: http.StatusTooManyRequests, code: "too-many-location-updates",
			msg: fmt.Sprintf("too many location updates (%s); retry in %d s", s.locLimit.limit(), secs)}
	}
	ch, err := s.store.SetLocation(r.Context(), me, pt)
	if err != nil {
		return fmt.Errorf("set location %d: %w", me, err)
	}
	privateNoStore(w)
	if !ch.Kept {
		// Only the user's own suggestions depend on their point at an edge;
		// the stores' cell caches drop the old and new cells themselves.
		setPurge(w, contract.SuggestionsTag(me))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"lat": ch.Stored.Lat, "lng": ch.Stored.Lng, "cell": ch.NewCell})
}

func (s *Server) block(w http.ResponseWriter, r *http.Request, me int64) error {
	target, err := parseID("user id", r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.store.Block(r.Context(), me, target); err != nil {
		return fmt.Errorf("block %d by %d: %w", target, me, err)
	}
	privateNoStore(w)
	// Both profiles: each edge drops its shared copy, whose deny list no
	// longer names the other user, and the next fetch carries the new one.
	setPurge(w, contract.SuggestionsTag(me), contract.SuggestionsTag(target), contract.MatchesTag(me), contract.MatchesTag(target),
		contract.ProfileTag(me), contract.ProfileTag(target))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- suggestions ---

// suggestionFields are the fields= a client may select; photos only on request.
var suggestionFields = []string{"id", "name", "age", "gender", "bio", "distance_km", "photos"}

var defaultSuggestionFields = []string{"id", "name", "age", "gender", "bio", "distance_km"}

// ParseFields validates a fields= list against the allowed names.
func ParseFields(v string) ([]string, error) {
	if v == "" {
		return append([]string(nil), defaultSuggestionFields...), nil
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(suggestionFields, f) {
			return nil, badRequest("unknown field %q; allowed: %s", f, strings.Join(suggestionFields, ","))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// TruncateRunes shortens s to at most n runes, ending with "…" when cut.
func TruncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

func (s *Server) suggestions(w http.ResponseWriter, r *http.Request, me int64) error {
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q, "limit", DefaultSuggestionLimit, MaxSuggestionLimit)
	if err != nil {
		return err
	}
	fields, err := ParseFields(q.Get("fields"))
	if err != nil {
		return err
	}
	start := time.Now()
	cs, err := s.store.Suggestions(r.Context(), me, limit)
	s.metrics.Matching.WithLabelValues(s.storeName).Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("suggestions for %d: %w", me, err)
	}
	body := appendSuggestions(make([]byte, 0, 64+200*len(cs)), cs, newFieldSet(fields))
	h := w.Header()
	h.Set("Cache-Control", "private, max-age=120")
	h.Set("Vary", "Authorization")
	h.Set(contract.CacheTags, contract.SuggestionsTag(me))
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

// --- swipes and matches ---

type matchJSON struct {
	ID             int64     `json:"id"`
	PeerID         int64     `json:"peer_id"`
	ConversationID int64     `json:"conversation_id"`
	CreatedAt      time.Time `json:"created_at"`
}

func toMatchJSON(m store.Match) matchJSON {
	return matchJSON{ID: m.ID, PeerID: m.PeerID, ConversationID: m.ConversationID, CreatedAt: m.CreatedAt}
}

func (s *Server) swipe(w http.ResponseWriter, r *http.Request, me int64) error {
	start := time.Now()
	defer func() { s.metrics.Swipe.Observe(time.Since(start).Seconds()) }()
	req, err := decodeRequest(w, r, DecodeSwipe)
	if err != nil {
		return err
	}
	res, err := s.store.Swipe(r.Context(), me, req.TargetID, req.Direction)
	if err != nil {
		return fmt.Errorf("swipe %d->%d: %w", me, req.TargetID, err)
	}
	privateNoStore(w)
	setPurge(w, contract.SuggestionsTag(me), contract.SuggestionsTag(req.TargetID), contract.MatchesTag(me), contract.MatchesTag(req.TargetID))
	body := map[string]any{"target_id": req.TargetID, "direction": res.Direction, "created": res.Created, "match": nil}
	if res.Match != nil {
		body["match"] = toMatchJSON(*res.Match)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, body)
}

func (s *Server) listMatches(w http.ResponseWriter, r *http.Request, me int64) error {
	ms, err := s.store.ListMatches(r.Context(), me)
	if err != nil {
		return fmt.Errorf("list matches %d: %w", me, err)
	}
	out := make([]matchJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, toMatchJSON(m))
	}
	h := w.Header()
	h.Set("Cache-Control", "private, no-cache")
	h.Set("Vary", "Authorization")
	h.Set(contract.CacheTags, contract.MatchesTag(me))
	return writeJSON(w, http.StatusOK, map[string]any{"matches": out})
}

func (s *Server) unmatch(w http.ResponseWriter, r *http.Request, me int64) error {
	id, err := parseID("match id", r.PathValue("id"))
	if err != nil {
		return err
	}
	m, err := s.store.Unmatch(r.Context(), me, id)
	if err != nil {
		return fmt.Errorf("unmatch %d by %d: %w", id, me, err)
	}
	privateNoStore(w)
	setPurge(w, contract.MatchesTag(me), contract.MatchesTag(m.PeerID))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- chat ---

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, me int64) error {
	cs, err := s.store.ListConversations(r.Context(), me)
	if err != nil {
		return fmt.Errorf("list conversations %d: %w", me, err)
	}
	if cs == nil {
		cs = []store.ConversationSummary{}
	}
	privateNoStore(w)
	return writeJSON(w, http.StatusOK, map[string]any{"conversations": cs})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q, "limit", DefaultMessageLimit, MaxMessageLimit)
	if err != nil {
		return err
	}
	var before int64
	if v := q.Get("before"); v != "" {
		if before, err = parseID("before", v); err != nil {
			return err
		}
	}
	ms, err := s.store.ListMessages(r.Context(), me, conv, before, limit)
	if err != nil {
		return fmt.Errorf("list messages %d: %w", conv, err)
	}
	if ms == nil {
		ms = []store.Message{}
	}
	var next any
	if len(ms) == limit {
		next = ms[len(ms)-1].ID
	}
	privateNoStore(w)
	return writeJSON(w, http.StatusOK, map[string]any{"messages": ms, "next_before": next})
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	req, err := decodeRequest(w, r, DecodeMessage)
	if err != nil {
		return err
	}
	m, created, err := s.store.SendMessage(r.Context(), me, conv, req.Body, req.ClientMsgID)
	if err != nil {
		return fmt.Errorf("send message in %d: %w", conv, err)
	}
	privateNoStore(w)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, m)
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request, me int64) error {
	conv, err := parseID("conversation id", r.PathValue("id"))
	if err != nil {
		return err
	}
	msg, err := decodeRequest(w, r, DecodeRead)
	if err != nil {
		return err
	}
	if err := s.store.MarkRead(r.Context(), me, conv, msg); err != nil {
		return fmt.Errorf("mark read %d in %d: %w", msg, conv, err)
	}
	privateNoStore(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
