// Package deck holds http.handlers.spark_deck_hints (Caddyfile directive
// spark_deck_hints, ordered right after request_header, so before
// spark_auth's neighbour spark_cache): swipe-deck prefetch for the
// suggestions response.
//
// The origin lists the deck's first photos in contract.DeckPhotos on its
// suggestions response; spark_cache stores that field with the entry, so a
// hit carries it as a miss does. When the final status is 200,
// spark_deck_hints, which wraps the cache, first sends 103 Early Hints with
// one "Link: <photo?w=&q=>; rel=preload; as=image; type=…" per photo in the
// variant the client's network class gets (the spark_image_plan app's plan
// applied to the request's client hints and the image types in its
// Accept), then the 200. It removes the field before the client sees it,
// and warms the same variants in the edge's cache in the background:
// bounded, deduplicated, through the same Caddy server without the
// client's credentials, for paths of the photo route only.
//
// This file is the Caddy surface; the logic is in Announcer (hints.go),
// the path check (paths.go) and warmer (warm.go).
package deck

import (
	"cmp"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/image"
	"github.com/spark-edge/spark/internal/contract"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's fields.
const (
	DefaultPhotos          = 5
	DefaultWarmConcurrency = 2
	DefaultWarmQueue       = 64
	DefaultWarmTimeout     = 15 * time.Second
)

// Handler is the spark_deck_hints middleware.
type Handler struct {
	// Photos is how many of the deck's photos are announced and warmed,
	// at most contract.MaxDeckPhotos. Default 5.
	Photos int `json:"photos,omitempty"`
	// NoWarm announces the photos without warming them.
	NoWarm bool `json:"no_warm,omitempty"`
	// WarmConcurrency is how many warm requests run at once, shared by
	// every spark_deck_hints of the process. Default 2.
	WarmConcurrency int `json:"warm_concurrency,omitempty"`
	// WarmQueue is how many warm requests may wait or run; more are
	// dropped (counted). Default 64.
	WarmQueue int `json:"warm_queue,omitempty"`
	// WarmTimeout bounds one warm request. Default 15s.
	WarmTimeout caddy.Duration `json:"warm_timeout,omitempty"`

	announcer *Announcer
	warmer    *warmer
	poolKey   string
	metrics   *metrics
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_deck_hints",
		New: func() caddy.Module { return new(Handler) },
	}
}

// warmers shares a warmer (its slots and in-flight set) between the
// handlers with the same limits, across config reloads.
var warmers = caddy.NewUsagePool()

// Provision takes the variant plan of the spark_image_plan app, the
// metrics and the shared warmer.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.setDefaults()
	app, err := ctx.App(image.PlanAppID)
	if err != nil {
		return fmt.Errorf("spark_deck_hints: load the variant plan: %w", err)
	}
	plan := app.(*image.PlanApp).Plan()
	h.announcer, err = NewAnnouncer(plan, h.Photos)
	if err != nil {
		return fmt.Errorf("spark_deck_hints: %w", err)
	}
	if h.metrics, err = newMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("spark_deck_hints: register metrics: %w", err)
	}
	if h.NoWarm {
		return nil
	}
	h.poolKey = fmt.Sprintf("deck-warmer/%d/%d/%d", h.WarmConcurrency, h.WarmQueue, h.WarmTimeout)
	v, _, err := warmers.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		return newWarmer(h.WarmConcurrency, h.WarmQueue, time.Duration(h.WarmTimeout)), nil
	})
	if err != nil {
		return fmt.Errorf("spark_deck_hints: warmer: %w", err)
	}
	h.warmer = v.(*warmer)
	return nil
}

func (h *Handler) setDefaults() {
	h.Photos = cmp.Or(h.Photos, DefaultPhotos)
	h.WarmConcurrency = cmp.Or(h.WarmConcurrency, DefaultWarmConcurrency)
	h.WarmQueue = cmp.Or(h.WarmQueue, DefaultWarmQueue)
	h.WarmTimeout = cmp.Or(h.WarmTimeout, caddy.Duration(DefaultWarmTimeout))
}

// Validate checks the limits.
func (h *Handler) Validate() error {
	switch {
	case h.Photos < 1 || h.Photos > contract.MaxDeckPhotos:
		return fmt.Errorf("spark_deck_hints: photos must be 1..%d, got %d", contract.MaxDeckPhotos, h.Photos)
	case h.WarmConcurrency < 1:
		return fmt.Errorf("spark_deck_hints: warm_concurrency must be at least 1, got %d", h.WarmConcurrency)
	case h.WarmQueue < h.WarmConcurrency:
		return fmt.Errorf("spark_deck_hints: warm_queue (%d) must be at least warm_concurrency (%d)", h.WarmQueue, h.WarmConcurrency)
	case h.WarmTimeout <= 0:
		return fmt.Errorf("spark_deck_hints: warm_timeout must be positive, got %v", time.Duration(h.WarmTimeout))
	}
	return nil
}

// Cleanup releases the shared warmer.
func (h *Handler) Cleanup() error {
	if h.warmer != nil {
		_, err := warmers.Delete(h.poolKey)
		if err != nil {
			return fmt.Errorf("spark_deck_hints: release the warmer: %w", err)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: the response goes out
// through the writer that announces and warms the deck.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var warm func([]Preload)
	if h.warmer != nil && r.Method == http.MethodGet {
		if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
			warm = func(ps []Preload) {
				for _, p := range ps {
					h.metrics.warm(h.warmer.enqueue(srv, r, p, h.metrics.warm))
				}
			}
		}
	}
	dw := &hintWriter{ResponseWriter: w, announcer: h.announcer, req: r, warm: warm, announced: h.metrics.announced}
	return next.ServeHTTP(dw, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
