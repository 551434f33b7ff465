// Package image holds the Caddy modules that serve profile photos resized
// for the client's connection:
//
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
// caches beyond the edge.
//
// This file is the Caddy surface; the logic is in Server, Hinter and the
// upstreams, which tests use without Caddy.
package image

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/imageproxy"
)

func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(Hints{})
}

// PlanConfig is the JSON form of imageproxy.Plan. Unset fields keep
// imageproxy.DefaultPlan's values.
type PlanConfig struct {
	// Sizes are the widths variants are made in, ascending.
	Sizes []int `json:"sizes,omitempty"`
	// Slow, ThreeG and Fast are [width, quality] for each network class.
	Slow   []int `json:"slow,omitempty"`
	ThreeG []int `json:"3g,omitempty"`
	Fast   []int `json:"fast,omitempty"`
	// DefaultClass applies with no hint and no RTT measurement: slow, 3g
	// or fast.
	DefaultClass string `json:"default_class,omitempty"`
	// Formats are the output formats offered, best first (avif, webp,
	// jpeg); jpeg is required.
	Formats []string `json:"formats,omitempty"`
}

// Build returns the plan.
func (c PlanConfig) Build() (imageproxy.Plan, error) {
	p := imageproxy.DefaultPlan()
	if len(c.Sizes) > 0 {
		p.Sizes = c.Sizes
	}
	for class, b := range map[imageproxy.Class][]int{imageproxy.ClassSlow: c.Slow, imageproxy.Class3G: c.ThreeG, imageproxy.ClassFast: c.Fast} {
		switch len(b) {
		case 0:
		case 2:
			p.Budgets[class] = imageproxy.Budget{Width: b[0], Quality: b[1]}
		default:
			return p, fmt.Errorf("plan: %s wants [width, quality], got %v", class, b)
		}
	}
	if c.DefaultClass != "" {
		cl, err := imageproxy.ParseClass(c.DefaultClass)
		if err != nil {
			return p, fmt.Errorf("plan: %w", err)
		}
		p.DefaultClass = cl
	}
	if len(c.Formats) > 0 {
		p.Formats = nil
		for _, s := range c.Formats {
			f, err := imageproxy.ParseFormat(s)
			if err != nil {
				return p, fmt.Errorf("plan: %w", err)
			}
			p.Formats = append(p.Formats, f)
		}
	}
	return p, p.Validate()
}

// connKey is the request context key of the client connection.
type connKey struct{}

// keepConn registers, on the HTTP server being provisioned, a connection
// context function that stores the connection in every request's context
// (Caddy's documented way: its own ConnCtxKey is no longer set).
func keepConn(ctx caddy.Context) {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return
	}
	srv.RegisterConnContext(func(c context.Context, conn net.Conn) context.Context {
		if c.Value(connKey{}) != nil {
			return c
		}
		return context.WithValue(c, connKey{}, conn)
	})
}

// measuredRTT is the connection's TCP round-trip time (TCP_INFO).
func measuredRTT(r *http.Request) time.Duration {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if c == nil {
		return 0
	}
	return tcpRTT(c)
}

// Hints is the spark_image_hints middleware.
type Hints struct {
	// Plan must match spark_image's plan (both default to the same one).
	Plan PlanConfig `json:"plan,omitempty"`
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

// Provision builds the plan.
func (h *Hints) Provision(ctx caddy.Context) error {
	plan, err := h.Plan.Build()
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

// Validate checks the plan.
func (h *Hints) Validate() error {
	if _, err := h.Plan.Build(); err != nil {
		return fmt.Errorf("spark_image_hints: %w", err)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Hints) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(h.hinter.Apply(w, r), r)
}

// processors shares a Processor (and so its concurrency limit) between the
// spark_image handlers with the same limits, across config reloads.
var processors = caddy.NewUsagePool()

type pooledProcessor struct{ *imageproxy.Processor }

// Destruct implements caddy.Destructor; a Processor holds nothing to free.
func (pooledProcessor) Destruct() error { return nil }

// Handler is the spark_image handler.
type Handler struct {
	// Root is a directory of originals. Exactly one of Root and Upstream.
	Root string `json:"root,omitempty"`
	// Upstream is an http(s) base URL originals are fetched from (base +
	// the request path without StripPrefix).
	Upstream string `json:"upstream,omitempty"`
	// StripPrefix is removed from the request path to name the original.
	StripPrefix string `json:"strip_prefix,omitempty"`
	// Plan must match spark_image_hints' plan.
	Plan PlanConfig `json:"plan,omitempty"`
	// Limits: zero values take imageproxy.DefaultLimits.
	MaxSourceBytes  int64          `json:"max_source_bytes,omitempty"`
	MaxSourcePixels int64          `json:"max_source_pixels,omitempty"`
	MaxSide         int            `json:"max_side,omitempty"`
	Timeout         caddy.Duration `json:"timeout,omitempty"`
	MaxConcurrent   int            `json:"max_concurrent,omitempty"`
	MaxQueue        int            `json:"max_queue,omitempty"`
	// UpstreamTimeout bounds the fetch of an original. Default 10s.
	UpstreamTimeout caddy.Duration `json:"upstream_timeout,omitempty"`
	// AVIFEffort is the AV1 encoder's effort, 0–9. Default 2.
	AVIFEffort int `json:"avif_effort,omitempty"`
	// CacheControl of variants. Default DefaultCacheControl.
	CacheControl string `json:"cache_control,omitempty"`
	// NoMeasureRTT turns off the TCP_INFO fallback.
	NoMeasureRTT bool `json:"no_measure_rtt,omitempty"`

	srv     *Server
	poolKey string
	dir     *DirUpstream
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_image",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the upstream and the shared processor.
func (h *Handler) Provision(ctx caddy.Context) error {
	if err := h.Validate(); err != nil {
		return err
	}
	plan, _ := h.Plan.Build()
	if h.UpstreamTimeout == 0 {
		h.UpstreamTimeout = caddy.Duration(10 * time.Second)
	}
	var up Upstream
	if h.Root != "" {
		d, err := NewDirUpstream(h.Root)
		if err != nil {
			return fmt.Errorf("spark_image: %w", err)
		}
		h.dir, up = d, d
	} else {
		u, err := NewHTTPUpstream(h.Upstream, time.Duration(h.UpstreamTimeout))
		if err != nil {
			return fmt.Errorf("spark_image: %w", err)
		}
		up = u
	}
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
	h.poolKey = fmt.Sprintf("%+v", cfg)
	v, _, err := processors.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		p, err := imageproxy.New(cfg)
		if err != nil {
			return nil, err
		}
		return pooledProcessor{p}, nil
	})
	if err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	h.srv = &Server{
		Proc:         v.(pooledProcessor).Processor,
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
	if err := h.srv.Init(); err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if (h.Root == "") == (h.Upstream == "") {
		return fmt.Errorf("spark_image: set exactly one of root and upstream")
	}
	if _, err := h.Plan.Build(); err != nil {
		return fmt.Errorf("spark_image: %w", err)
	}
	if h.MaxSourceBytes < 0 || h.MaxSourcePixels < 0 || h.MaxSide < 0 || h.Timeout < 0 || h.MaxConcurrent < 0 ||
		h.MaxQueue < 0 || h.UpstreamTimeout < 0 || h.AVIFEffort < 0 || h.AVIFEffort > 9 {
		return fmt.Errorf("spark_image: negative limit or avif_effort outside 0..9")
	}
	return nil
}

// Cleanup releases the directory and this config's hold on the processor.
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
// every request it gets; scope it with a matcher.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.srv.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Hints)(nil)
	_ caddy.Validator             = (*Hints)(nil)
	_ caddyhttp.MiddlewareHandler = (*Hints)(nil)
)
