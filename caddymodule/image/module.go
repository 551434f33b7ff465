// Package image holds the Caddy modules that serve profile photos resized
// for the client's connection:
//
//   - spark_image_plan (a Caddy app, and the Caddyfile global option of
//     that name): the one variant plan the two handlers below read, so they
//     cannot drift apart.
//   - http.handlers.spark_image_hints (directive spark_image_hints, ordered
//     right after request_header, so before spark_cache): quantizes the
//     request's hints into a variant and sets the normalized request header
//     Spark-Image-Variant, replacing any value the client sent.
//   - http.handlers.spark_image (directive spark_image, ordered before
//     respond): fetches the original from the configured upstream only (a
//     directory or an HTTP base URL), makes the variant with imageproxy and
//     answers with Vary: Spark-Image-Variant, a strong ETag and a long
//     Cache-Control.
//
// With spark_cache between them the cache keys image responses on the
// variant, not on raw hint values: one entry per variant. On the way out
// spark_image_hints turns that Vary back into the real request fields for
// caches beyond the edge. Both handlers set the placeholder
// {http.spark_image.variant} to the chosen variant, for logs.
//
// This file is the handlers' Caddy surface (the plan app's is plan.go); the
// logic is in Server, Hinter and the upstreams, which tests use without
// Caddy.
package image

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

func init() {
	caddy.RegisterModule(PlanApp{})
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(Hints{})
}

// VariantPlaceholder is the placeholder both handlers set to the variant
// chosen for the request (e.g. w400-q75-webp), for access logs
// (log_append variant {http.spark_image.variant}).
const VariantPlaceholder = "http.spark_image.variant"

// setVariantPlaceholder sets VariantPlaceholder on the request's replacer
// to variant, the variant's text.
func setVariantPlaceholder(r *http.Request, variant any) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(VariantPlaceholder, variant)
	}
}

// Hints is the spark_image_hints middleware.
type Hints struct {
	// CriticalCH adds Critical-CH to HTML responses.
	CriticalCH bool `json:"critical_ch,omitempty"`
	// NoMeasureRTT turns off the TCP_INFO fallback for requests without
	// network hints.
	NoMeasureRTT bool `json:"no_measure_rtt,omitempty"`

	hinter *Hinter
}

// CaddyModule returns the Caddy module information.
func (Hints) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_image_hints",
		New: func() caddy.Module { return new(Hints) },
	}
}

// Provision takes the plan of the spark_image_plan app.
func (h *Hints) Provision(ctx caddy.Context) error {
	plan, err := sharedPlan(ctx)
	if err != nil {
		return fmt.Errorf("spark_image_hints: %w", err)
	}
	h.hinter = &Hinter{Plan: plan, CriticalCH: h.CriticalCH}
	if !h.NoMeasureRTT {
		keepConn(ctx)
		h.hinter.MeasuredRTT = measuredRTT
	}
	if err := h.hinter.Init(); err != nil {
		return fmt.Errorf("spark_image_hints: %w", err)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Hints) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w = h.hinter.Apply(w, r)
	setVariantPlaceholder(r, h.hinter.PlaceholderValue(r.Header.Get(contract.ImageVariant)))
	return next.ServeHTTP(w, r)
}

// processors shares a Processor (and so its concurrency limit) between the
// spark_image handlers with the same limits, across config reloads.
var processors = caddy.NewUsagePool()

type pooledProcessor struct{ *imageproxy.Processor }

// Destruct implements caddy.Destructor; a Processor holds nothing to free,
// and transforms still running finish in the background.
func (pooledProcessor) Destruct() error { return nil }

// DefaultUpstreamTimeout bounds the fetch of an original when
// upstream_timeout is not set.
const DefaultUpstreamTimeout = 10 * time.Second

// Handler is the spark_image handler.
type Handler struct {
	// Root is a directory of originals. Exactly one of Root and Upstream.
	Root string `json:"root,omitempty"`
	// Upstream is an http(s) base URL originals are fetched from (base +
	// the request path without StripPrefix).
	Upstream string `json:"upstream,omitempty"`
	// StripPrefix is removed from the request path to name the original.
	StripPrefix string `json:"strip_prefix,omitempty"`
	// MaxSourceBytes bounds an original's encoded size. Default 25 MB.
	MaxSourceBytes int64 `json:"max_source_bytes,omitempty"`
	// MaxSourcePixels bounds an original's declared width × height.
	// Default 50 MP (25 MP for PNG and lossless WebP).
	MaxSourcePixels int64 `json:"max_source_pixels,omitempty"`
	// MaxSide bounds an original's longest declared side. Default 12,000.
	MaxSide int `json:"max_side,omitempty"`
	// Timeout bounds one transform, waiting for a slot included. Default
	// 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxConcurrent is the number of transform slots (an AVIF encode takes
	// two), shared by every spark_image with the same limits. Default 2.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// MaxQueue is how many transforms may wait for a slot; more are
	// refused with 503 and Retry-After. Default 16.
	MaxQueue int `json:"max_queue,omitempty"`
	// UpstreamTimeout bounds the fetch of an original. Default 10s.
	UpstreamTimeout caddy.Duration `json:"upstream_timeout,omitempty"`
	// AVIFEffort is the AV1 encoder's effort, 0–9. Default 2.
	AVIFEffort int `json:"avif_effort,omitempty"`
	// CacheControl of variants. Default DefaultCacheControl.
	CacheControl string `json:"cache_control,omitempty"`
	// NoMeasureRTT turns off the TCP_INFO fallback.
	NoMeasureRTT bool `json:"no_measure_rtt,omitempty"`

	srv          *Server
	poolKey      string
	dir          *DirUpstream
	handleErrors bool
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_image",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the plan of the spark_image_plan app, opens the upstream
// and takes the processor shared by handlers with the same limits.
func (h *Handler) Provision(ctx caddy.Context) error {
	plan, err := sharedPlan(ctx)
	if err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	if h.UpstreamTimeout == 0 {
		h.UpstreamTimeout = caddy.Duration(DefaultUpstreamTimeout)
	}
	up, err := h.openUpstream()
	if err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	proc, err := h.takeProcessor()
	if err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	h.srv = &Server{
		Proc:         proc,
		Plan:         plan,
		Upstream:     up,
		StripPrefix:  h.StripPrefix,
		CacheControl: h.CacheControl,
		FetchTimeout: time.Duration(h.UpstreamTimeout),
		Logger:       ctx.Logger(),
	}
	if !h.NoMeasureRTT {
		keepConn(ctx)
		h.srv.MeasuredRTT = measuredRTT
	}
	h.handleErrors = serverHandlesErrors(ctx)
	if err := h.srv.Init(); err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	return nil
}

// errOneSource is the configuration error of a handler with both or
// neither of root and upstream.
var errOneSource = errors.New("set exactly one of root and upstream")

// openUpstream opens the configured directory or checks the base URL.
func (h *Handler) openUpstream() (Upstream, error) {
	switch {
	case (h.Root == "") == (h.Upstream == ""):
		return nil, errOneSource
	case h.Root != "":
		d, err := NewDirUpstream(h.Root)
		if err != nil {
			return nil, err
		}
		h.dir = d
		return d, nil
	}
	return NewHTTPUpstream(h.Upstream, time.Duration(h.UpstreamTimeout))
}

// takeProcessor returns the pooled processor for this handler's limits,
// making it if no handler with the same limits holds one.
func (h *Handler) takeProcessor() (*imageproxy.Processor, error) {
	cfg := imageproxy.Config{
		Limits: imageproxy.Limits{
			MaxSourceBytes:  h.MaxSourceBytes,
			MaxSourcePixels: h.MaxSourcePixels,
			MaxSide:         h.MaxSide,
			Timeout:         time.Duration(h.Timeout),
			MaxConcurrent:   h.MaxConcurrent,
			MaxQueue:        h.MaxQueue,
		},
		AVIFEffort: h.AVIFEffort,
	}
	key := fmt.Sprintf("%+v", cfg)
	v, _, err := processors.LoadOrNew(key, func() (caddy.Destructor, error) {
		p, err := imageproxy.New(cfg)
		if err != nil {
			return nil, err
		}
		return pooledProcessor{p}, nil
	})
	if err != nil {
		return nil, err
	}
	h.poolKey = key
	return v.(pooledProcessor).Processor, nil
}

// serverHandlesErrors reports whether the HTTP server being provisioned has
// handle_errors routes: then refusals leave as caddyhttp.Error for them;
// without, spark_image writes them itself, since Caddy's default error
// response has no body.
func serverHandlesErrors(ctx caddy.Context) bool {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if (h.Root == "") == (h.Upstream == "") {
		return fmt.Errorf("spark_image: %w", errOneSource)
	}
	if h.MaxSourceBytes < 0 || h.MaxSourcePixels < 0 || h.MaxSide < 0 || h.Timeout < 0 || h.MaxConcurrent < 0 ||
		h.MaxQueue < 0 || h.UpstreamTimeout < 0 || h.AVIFEffort < 0 || h.AVIFEffort > 9 {
		return errors.New("spark_image: negative limit or avif_effort outside 0..9")
	}
	return nil
}

// Cleanup releases the directory and this config's hold on the processor.
// It never waits, so it never holds up a reload: a transform still running
// (libvips cannot be interrupted) keeps its slot and finishes in the
// background.
func (h *Handler) Cleanup() error {
	if h.dir != nil {
		_ = h.dir.Close()
	}
	if h.poolKey != "" {
		_, err := processors.Delete(h.poolKey)
		return err
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. spark_image answers
// every request it gets; scope it with a matcher. A refusal (4xx, 5xx)
// leaves as a caddyhttp.Error when the server has handle_errors routes,
// with its no-store headers already set; otherwise it is written here as
// plain text.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	v, refusal := h.srv.Serve(w, r)
	if v != (imageproxy.Variant{}) {
		setVariantPlaceholder(r, v.String())
	}
	if refusal == nil {
		return nil
	}
	if h.handleErrors {
		refusal.SetHeader(w.Header())
		return caddyhttp.Error(refusal.Status, refusal)
	}
	h.srv.WriteRefusal(w, r, refusal)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Hints)(nil)
	_ caddyhttp.MiddlewareHandler = (*Hints)(nil)
)
