package image

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// CriticalCH is the Critical-CH value sent on HTML responses when enabled:
// Chromium retries a navigation once to get these hints. It does nothing
// for image requests, which are subresources.
const CriticalCH = "Sec-CH-DPR, Sec-CH-Viewport-Width, ECT"

// Hinter is the logic of spark_image_hints: it quantizes the request's
// hints into a variant before the response cache sees the request.
type Hinter struct {
	// Plan turns the hints into a variant.
	Plan imageproxy.Plan
	// CriticalCH adds Critical-CH to HTML responses.
	CriticalCH bool
	// MeasuredRTT returns the connection's measured round trip, used when
	// the request has no network hint; may be nil.
	MeasuredRTT func(*http.Request) time.Duration

	formats []imageproxy.Format
	vary    string
	// names holds the text of every variant the plan can choose, and
	// values the same texts boxed once, so that neither the header nor the
	// placeholder costs an allocation per request.
	names  map[imageproxy.Variant]string
	values map[string]any
}

// Init validates the plan and fills the derived fields.
func (hn *Hinter) Init() error {
	if err := hn.Plan.Validate(); err != nil {
		return err
	}
	hn.formats = imageproxy.EncoderFormats(hn.Plan.Formats)
	hn.vary = strings.Join(imageproxy.VaryHeaders, ", ")
	hn.names = make(map[imageproxy.Variant]string)
	hn.values = make(map[string]any)
	for _, w := range hn.Plan.Sizes {
		for _, q := range hn.Plan.Qualities() {
			for _, f := range hn.formats {
				for _, sq := range []bool{false, true} {
					v := imageproxy.Variant{Width: w, Quality: q, Format: f, Square: sq}
					text := v.String()
					hn.names[v], hn.values[text] = text, text
				}
			}
		}
	}
	return nil
}

// PlaceholderValue returns the value for VariantPlaceholder of a variant
// text Apply set: boxed once at Init for every variant of the plan.
func (hn *Hinter) PlaceholderValue(text string) any {
	if v, ok := hn.values[text]; ok {
		return v
	}
	return text
}

// Apply sets the contract.ImageVariant header on the request, replacing
// whatever the client sent, and returns a writer that, on the way out,
// turns "Vary: Spark-Image-Variant" (what the edge's cache keys on) into
// the request fields it stands for (what caches beyond the edge must key
// on), and adds Accept-CH to images and HTML pages.
func (hn *Hinter) Apply(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	h := imageproxy.ParseHints(r.Header, r.URL.Query())
	if hn.MeasuredRTT != nil && !hasNetworkHint(h) {
		h.MeasuredRTT = hn.MeasuredRTT(r)
	}
	v := hn.Plan.Choose(h, hn.formats)
	text, ok := hn.names[v]
	if !ok {
		text = v.String()
	}
	r.Header.Set(contract.ImageVariant, text)
	return &varyWriter{ResponseWriter: w, hn: hn}
}

// varyWriter rewrites the response header once, before it is written.
type varyWriter struct {
	http.ResponseWriter
	hn    *Hinter
	wrote bool
}

func (v *varyWriter) rewrite() {
	if v.wrote {
		return
	}
	v.wrote = true
	h := v.Header()
	if vals := h.Values("Vary"); len(vals) > 0 {
		var out []string
		changed := false
		for _, val := range vals {
			for _, f := range strings.Split(val, ",") {
				f = strings.TrimSpace(f)
				if strings.EqualFold(f, contract.ImageVariant) {
					changed = true
					out = append(out, v.hn.vary)
				} else if f != "" {
					out = append(out, f)
				}
			}
		}
		if changed {
			h.Set("Vary", strings.Join(out, ", "))
		}
	}
	ct := h.Get("Content-Type")
	if strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "text/html") {
		h.Set("Accept-CH", imageproxy.AcceptCH)
	}
	if v.hn.CriticalCH && strings.HasPrefix(ct, "text/html") {
		h.Set("Critical-CH", CriticalCH)
	}
}

// WriteHeader rewrites the header on the final (non-1xx) status.
func (v *varyWriter) WriteHeader(code int) {
	if code >= 200 {
		v.rewrite()
	}
	v.ResponseWriter.WriteHeader(code)
}

// Write writes the body, rewriting the header first if needed.
func (v *varyWriter) Write(b []byte) (int, error) {
	v.rewrite()
	return v.ResponseWriter.Write(b)
}

// ReadFrom copies the body, rewriting the header first if needed.
func (v *varyWriter) ReadFrom(r io.Reader) (int64, error) {
	v.rewrite()
	return io.Copy(v.ResponseWriter, r)
}

// Flush flushes the underlying writer when it can.
func (v *varyWriter) Flush() {
	v.rewrite()
	_ = http.NewResponseController(v.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (v *varyWriter) Unwrap() http.ResponseWriter { return v.ResponseWriter }
