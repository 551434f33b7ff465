package image

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// DefaultCacheControl is the Cache-Control of variants: a year, immutable.
// Photo URLs name an upload; a deleted photo is purged at the edges with
// Spark-Purge.
const DefaultCacheControl = "public, max-age=31536000, immutable"

// Server serves variants of the originals of one Upstream: the logic of
// the spark_image handler, usable without Caddy.
type Server struct {
	// Proc makes the variants (and bounds how many at once).
	Proc *imageproxy.Processor
	// Plan turns hints into variants, and says which variants a request
	// header may name.
	Plan imageproxy.Plan
	// Upstream holds the originals.
	Upstream Upstream
	// StripPrefix is removed from the request path to name the original.
	StripPrefix string
	// CacheControl of variants. Default DefaultCacheControl.
	CacheControl string
	// FetchTimeout bounds the fetch of an original. Default
	// DefaultUpstreamTimeout.
	FetchTimeout time.Duration
	// MeasuredRTT returns the connection's round-trip time as the edge
	// measured it (0 when unknown); may be nil.
	MeasuredRTT func(*http.Request) time.Duration
	// Logger gets refusals (debug) and failures (error). Default: none.
	Logger *zap.Logger

	formats []imageproxy.Format
}

// Init checks the server's fields and fills its defaults.
func (s *Server) Init() error {
	if s.Proc == nil || s.Upstream == nil {
		return errors.New("spark_image: processor and upstream are required")
	}
	if err := s.Plan.Validate(); err != nil {
		return err
	}
	if s.CacheControl == "" {
		s.CacheControl = DefaultCacheControl
	}
	if s.FetchTimeout == 0 {
		s.FetchTimeout = DefaultUpstreamTimeout
	}
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	s.formats = imageproxy.EncoderFormats(s.Plan.Formats)
	return nil
}

// Variant returns the variant for the request and the Vary value of the
// response. A valid contract.ImageVariant header (set by
// spark_image_hints, whose value the plan allows) is used as is and is what
// the response varies on; otherwise the hints are read here and the
// response varies on them.
func (s *Server) Variant(r *http.Request) (imageproxy.Variant, string) {
	if hv := r.Header.Get(contract.ImageVariant); hv != "" {
		if v, err := imageproxy.ParseVariant(hv); err == nil && s.Plan.Allows(v) && slices.Contains(s.formats, v.Format) {
			return v, contract.ImageVariant
		}
	}
	h := imageproxy.ParseHints(r.Header, r.URL.Query())
	if s.MeasuredRTT != nil && !hasNetworkHint(h) {
		h.MeasuredRTT = s.MeasuredRTT(r)
	}
	return s.Plan.Choose(h, s.formats), strings.Join(imageproxy.VaryHeaders, ", ")
}

// hasNetworkHint reports whether the client sent any hint that classifies
// the connection (so measuring the RTT is unnecessary).
func hasNetworkHint(h imageproxy.Hints) bool {
	return h.SaveData || h.ECT != "" || h.RTT > 0 || h.DownlinkMbps > 0
}

// Serve writes the variant of the original the path names, or returns why
// it will not, having written nothing: the caller answers the Refusal
// (ServeHTTP writes it; the Caddy module may hand it to handle_errors). It
// also returns the variant chosen, zero when the request was refused before
// one was (method, name).
func (s *Server) Serve(w http.ResponseWriter, r *http.Request) (imageproxy.Variant, *Refusal) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return imageproxy.Variant{}, &Refusal{Status: http.StatusMethodNotAllowed, Err: errMethod}
	}
	p, ok := strings.CutPrefix(r.URL.Path, s.StripPrefix)
	if !ok {
		return imageproxy.Variant{}, &Refusal{Status: http.StatusNotFound, Err: ErrNotFound}
	}
	name, err := CleanName(p)
	if err != nil {
		return imageproxy.Variant{}, &Refusal{Status: http.StatusBadRequest, Err: err}
	}
	v, vary := s.Variant(r)
	fctx, cancel := context.WithTimeout(r.Context(), s.FetchTimeout)
	src, err := s.Upstream.Fetch(fctx, name, s.Proc.Limits().MaxSourceBytes)
	cancel()
	if err != nil {
		return v, &Refusal{Status: fetchStatus(err), Err: err}
	}
	res, err := s.Proc.Transform(r.Context(), src, v)
	if err != nil {
		code, retry := imageproxy.StatusCode(err)
		return v, &Refusal{Status: code, RetryAfter: retry, Err: err}
	}
	h := w.Header()
	etag := res.ETag()
	h.Set("Content-Type", res.Format.ContentType())
	h.Set("Cache-Control", s.CacheControl)
	h.Set("ETag", etag)
	h.Set("Vary", vary)
	h.Set("Accept-CH", imageproxy.AcceptCH)
	h.Set(contract.ImageVariant, v.String())
	// The origin purges every variant with the same tag (Spark-Purge) when
	// the photo goes.
	h.Set(contract.CacheTags, contract.PhotoTag(name))
	h.Set("X-Content-Type-Options", "nosniff")
	if contract.MatchETagList(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return v, nil
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.Body)
	}
	return v, nil
}

// ServeHTTP serves the variant, and writes a refusal as WriteRefusal does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, refusal := s.Serve(w, r); refusal != nil {
		s.WriteRefusal(w, r, refusal)
	}
}

// errMethod refuses every method but GET and HEAD.
var errMethod = errors.New("method not allowed")

// Refusal is the answer to a request that gets no variant: its status, a
// Retry-After delay for the ones worth retrying (busy, timed out), and why.
type Refusal struct {
	// Status is the HTTP status, 4xx or 5xx.
	Status int
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
	// Err says why, with detail (upstream addresses included) for logs.
	Err error
}

// Error returns the detailed reason.
func (f *Refusal) Error() string { return f.Err.Error() }

// Unwrap returns the reason, for errors.Is.
func (f *Refusal) Unwrap() error { return f.Err }

// SetHeader sets the fields every refusal carries: Cache-Control no-store
// (no cache keeps it), nosniff, Retry-After when there is one, and Allow on
// a 405.
func (f *Refusal) SetHeader(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	if f.Status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD")
	}
}

// Message is the body clients get: the status text, and for a 4xx what was
// wrong with the request or the original; a 5xx says only its status (the
// detail, such as an upstream address, is for the log).
func (f *Refusal) Message() string {
	msg := http.StatusText(f.Status)
	if f.Status < 500 {
		msg += ": " + f.Err.Error()
	}
	return msg
}

// WriteRefusal writes a refusal as plain text that no cache stores, and
// logs it: 4xx at debug level, 5xx as errors.
func (s *Server) WriteRefusal(w http.ResponseWriter, r *http.Request, f *Refusal) {
	if f.Status < 500 {
		s.Logger.Debug("image request refused", zap.String("path", r.URL.Path), zap.Int("status", f.Status), zap.Error(f.Err))
	} else {
		s.Logger.Error("image request failed", zap.String("path", r.URL.Path), zap.Int("status", f.Status), zap.Error(f.Err))
	}
	h := w.Header()
	f.SetHeader(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(f.Status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, f.Message()+"\n")
	}
}

// fetchStatus maps an upstream error to a status.
func fetchStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadName):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, imageproxy.ErrSourceTooLarge):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}
