package image

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/imageproxy"
)

// VariantHeader is the normalized request header that carries the chosen
// variant (imageproxy.Variant.String()) from spark_image_hints, which runs
// before spark_cache, to spark_image. Responses vary on it inside the edge,
// so spark_cache stores one entry per variant whatever the raw hints were.
const VariantHeader = "Spark-Image-Variant"

// DefaultCacheControl is the Cache-Control of variants: a year, immutable.
// Photo URLs name an upload; a deleted photo is purged at the edges with
// Spark-Purge.
const DefaultCacheControl = "public, max-age=31536000, immutable"

// Server serves variants of the originals of one Upstream: the logic of
// the spark_image handler, usable without Caddy.
type Server struct {
	Proc         *imageproxy.Processor
	Plan         imageproxy.Plan
	Upstream     Upstream
	StripPrefix  string
	CacheControl string
	// FetchTimeout bounds the fetch of an original.
	FetchTimeout time.Duration
	// MeasuredRTT returns the connection's round-trip time as the edge
	// measured it (0 when unknown); may be nil.
	MeasuredRTT func(*http.Request) time.Duration
	Logger      *zap.Logger

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
		s.FetchTimeout = 10 * time.Second
	}
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	s.formats = imageproxy.EncoderFormats(s.Plan.Formats)
	return nil
}

// Variant returns the variant for the request and the Vary value of the
// response. A valid VariantHeader (set by spark_image_hints, whose value
// the plan allows) is used as is and is what the response varies on;
// otherwise the hints are read here and the response varies on them.
func (s *Server) Variant(r *http.Request) (imageproxy.Variant, string) {
	if hv := r.Header.Get(VariantHeader); hv != "" {
		if v, err := imageproxy.ParseVariant(hv); err == nil && s.Plan.Allows(v) && containsFormat(s.formats, v.Format) {
			return v, VariantHeader
		}
	}
	h := imageproxy.ParseHints(r.Header, r.URL.Query())
	if s.MeasuredRTT != nil && !hasNetworkHint(h) {
		h.MeasuredRTT = s.MeasuredRTT(r)
	}
	return s.Plan.Choose(h, s.formats), strings.Join(imageproxy.VaryHeaders, ", ")
}

func containsFormat(fs []imageproxy.Format, f imageproxy.Format) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// hasNetworkHint reports whether the client sent any hint that classifies
// the connection (so measuring the RTT is unnecessary).
func hasNetworkHint(h imageproxy.Hints) bool {
	return h.SaveData || h.ECT != "" || h.RTT > 0 || h.DownlinkMbps > 0
}

// ServeHTTP serves the variant of the original the path names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, http.StatusMethodNotAllowed, errors.New("method not allowed"))
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, s.StripPrefix)
	if !ok {
		s.fail(w, r, http.StatusNotFound, ErrNotFound)
		return
	}
	name, err := CleanName(p)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	v, vary := s.Variant(r)
	fctx, cancel := context.WithTimeout(r.Context(), s.FetchTimeout)
	src, err := s.Upstream.Fetch(fctx, name, s.Proc.Limits().MaxSourceBytes)
	cancel()
	if err != nil {
		s.fail(w, r, fetchStatus(err), err)
		return
	}
	res, err := s.Proc.Transform(r.Context(), src, v)
	if err != nil {
		code, retry := imageproxy.StatusCode(err)
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
		}
		s.fail(w, r, code, err)
		return
	}
	h := w.Header()
	etag := res.ETag()
	h.Set("Content-Type", res.Format.ContentType())
	h.Set("Cache-Control", s.CacheControl)
	h.Set("ETag", etag)
	h.Set("Vary", vary)
	h.Set("Accept-CH", imageproxy.AcceptCH)
	h.Set(VariantHeader, v.String())
	h.Set("Cache-Tags", PhotoTag(name))
	h.Set("X-Content-Type-Options", "nosniff")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.Body)
	}
}

// PhotoTag is the Cache-Tags value spark_image puts on every variant of
// the original name: "photo:" + name, with spaces and commas (the tag
// separators) percent-encoded. The origin purges all variants of a photo
// at every edge with "Spark-Purge: photo:<name>" (e.g. on DELETE), where
// name is the upstream name: the request path without strip_prefix.
func PhotoTag(name string) string {
	return "photo:" + strings.NewReplacer(" ", "%20", ",", "%2C").Replace(name)
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

// etagMatch is the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// fail writes an error response that no cache stores. 4xx bodies say
// what was wrong with the request or the original; 5xx bodies say only the
// status (details, such as upstream addresses, go to the log).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	msg := http.StatusText(code)
	if code < 500 {
		msg += ": " + err.Error()
		s.Logger.Debug("image request refused", zap.String("path", r.URL.Path), zap.Int("status", code), zap.Error(err))
	} else {
		s.Logger.Error("image request failed", zap.String("path", r.URL.Path), zap.Int("status", code), zap.Error(err))
	}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, msg+"\n")
	}
}
