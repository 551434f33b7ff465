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
// With profiles set, it also warms the full profiles of the deck's first
// cards (the origin lists the cards in contract.DeckCards), and with
// next_page the deck's next page (the origin names its cursor in
// contract.DeckNext), as the deck's viewer: each is fetched through the
// same server with the viewer's Authorization, so spark_auth, the origin's
// answer for that viewer and spark_cache's keys and private handling are
// exactly those of the viewer's own request for it. Only for decks that
// were not cache hits (a hit's were warmed at its fill), bounded by their
// own concurrency and queue; a warmed next page warms its cards' profiles
// but not the page after it.
//
// This file is the Caddy surface; the logic is in Announcer (hints.go),
// the path checks (paths.go, cards.go) and warmer (warm.go).
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
	// DefaultViewerConcurrency and DefaultViewerQueue bound the warms
	// made as the viewer (profiles and next_page are off by default).
	DefaultViewerConcurrency = 2
	DefaultViewerQueue       = 256
)

// Handler is the spark_deck_hints middleware.
type Handler struct {
	// Photos is how many of the deck's photos are announced and warmed,
	// at most contract.MaxDeckPhotos. Default 5.
	Photos int `json:"photos,omitempty"`
	// NoWarm announces the photos without warming them (profiles and
	// next_page are set apart).
	NoWarm bool `json:"no_warm,omitempty"`
	// WarmConcurrency is how many warm requests run at once, shared by
	// every spark_deck_hints of the process. Default 2.
	WarmConcurrency int `json:"warm_concurrency,omitempty"`
	// WarmQueue is how many warm requests may wait or run; more are
	// dropped (counted). Default 64.
	WarmQueue int `json:"warm_queue,omitempty"`
	// WarmTimeout bounds one warm request (photo, profile or page).
	// Default 15s.
	WarmTimeout caddy.Duration `json:"warm_timeout,omitempty"`
	// Profiles is how many of the deck's cards get their full profile
	// warmed as the deck's viewer, at most contract.MaxDeckCards. Default
	// 0: none.
	Profiles int `json:"profiles,omitempty"`
	// NextPage warms the deck's next page (the request with after= the
	// origin's cursor) as the deck's viewer.
	NextPage bool `json:"next_page,omitempty"`
	// ViewerConcurrency is how many warms made as the viewer (profiles,
	// next pages) run at once, shared by every spark_deck_hints of the
	// process with the same limits. Default 2.
	ViewerConcurrency int `json:"viewer_concurrency,omitempty"`
	// ViewerQueue is how many warms made as the viewer may wait or run;
	// more are dropped (counted). Default 256.
	ViewerQueue int `json:"viewer_queue,omitempty"`

	announcer     *Announcer
	warmer        *warmer
	poolKey       string
	viewerWarmer  *warmer
	viewerPoolKey string
	metrics       *metrics
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
	if h.Profiles > 0 || h.NextPage {
		h.viewerPoolKey = fmt.Sprintf("deck-viewer-warmer/%d/%d/%d", h.ViewerConcurrency, h.ViewerQueue, h.WarmTimeout)
		if h.viewerWarmer, err = loadWarmer(h.viewerPoolKey, h.ViewerConcurrency, h.ViewerQueue, h.WarmTimeout); err != nil {
			return fmt.Errorf("spark_deck_hints: viewer warmer: %w", err)
		}
	}
	if h.NoWarm {
		return nil
	}
	h.poolKey = fmt.Sprintf("deck-warmer/%d/%d/%d", h.WarmConcurrency, h.WarmQueue, h.WarmTimeout)
	if h.warmer, err = loadWarmer(h.poolKey, h.WarmConcurrency, h.WarmQueue, h.WarmTimeout); err != nil {
		return fmt.Errorf("spark_deck_hints: warmer: %w", err)
	}
	return nil
}

// loadWarmer takes the pooled warmer of key, making it with these limits.
func loadWarmer(key string, concurrency, queue int, timeout caddy.Duration) (*warmer, error) {
	v, _, err := warmers.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newWarmer(concurrency, queue, time.Duration(timeout)), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*warmer), nil
}

func (h *Handler) setDefaults() {
	h.Photos = cmp.Or(h.Photos, DefaultPhotos)
	h.WarmConcurrency = cmp.Or(h.WarmConcurrency, DefaultWarmConcurrency)
	h.WarmQueue = cmp.Or(h.WarmQueue, DefaultWarmQueue)
	h.WarmTimeout = cmp.Or(h.WarmTimeout, caddy.Duration(DefaultWarmTimeout))
	h.ViewerConcurrency = cmp.Or(h.ViewerConcurrency, DefaultViewerConcurrency)
	h.ViewerQueue = cmp.Or(h.ViewerQueue, DefaultViewerQueue)
}

// Validate checks the limits.
func (h *Handler) Validate() error {
	switch {
	case h.Photos < 1 || h.Photos > contract.MaxDeckPhotos:
		return fmt.Errorf("spark_deck_hints: photos must be 1..%d, got %d", contract.MaxDeckPhotos, h.Photos)
	case h.WarmTimeout <= 0:
		return fmt.Errorf("spark_deck_hints: warm_timeout must be positive, got %v", time.Duration(h.WarmTimeout))
	case h.Profiles < 0 || h.Profiles > contract.MaxDeckCards:
		return fmt.Errorf("spark_deck_hints: profiles must be 0..%d, got %d", contract.MaxDeckCards, h.Profiles)
	}
	if err := validateBounds("warm", h.WarmConcurrency, h.WarmQueue); err != nil {
		return err
	}
	return validateBounds("viewer", h.ViewerConcurrency, h.ViewerQueue)
}

// validateBounds checks a warmer's <prefix>_concurrency and <prefix>_queue.
func validateBounds(prefix string, concurrency, queue int) error {
	if concurrency < 1 {
		return fmt.Errorf("spark_deck_hints: %s_concurrency must be at least 1, got %d", prefix, concurrency)
	}
	if queue < concurrency {
		return fmt.Errorf("spark_deck_hints: %s_queue (%d) must be at least %s_concurrency (%d)", prefix, queue, prefix, concurrency)
	}
	return nil
}

// Cleanup releases the shared warmers.
func (h *Handler) Cleanup() error {
	for _, w := range []struct {
		held bool
		key  string
	}{{h.warmer != nil, h.poolKey}, {h.viewerWarmer != nil, h.viewerPoolKey}} {
		if !w.held {
			continue
		}
		if _, err := warmers.Delete(w.key); err != nil {
			return fmt.Errorf("spark_deck_hints: release the warmer %s: %w", w.key, err)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: the response goes out
// through the writer that announces and warms the deck.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var warm func([]Preload)
	var warmCards func([]string)
	var warmNext func(string)
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv != nil && r.Method == http.MethodGet {
		if h.warmer != nil {
			warm = func(ps []Preload) {
				for _, p := range ps {
					h.metrics.warm(h.warmer.enqueue(srv, photoKey(p), warmRequest(r, p), h.metrics.warm))
				}
			}
		}
		if h.viewerWarmer != nil && h.Profiles > 0 {
			count := h.metrics.viewerWarm(warmProfile)
			warmCards = func(paths []string) {
				for _, p := range paths {
					count(h.viewerWarmer.enqueue(srv, p, profileRequest(r, p), count))
				}
			}
		}
		if h.viewerWarmer != nil && h.NextPage && !isPageWarm(r) {
			count := h.metrics.viewerWarm(warmPage)
			warmNext = func(url string) {
				// Per viewer: the page is theirs.
				key := url + " " + r.Header.Get("Authorization")
				count(h.viewerWarmer.enqueue(srv, key, pageRequest(r, url), count))
			}
		}
	}
	dw := &hintWriter{ResponseWriter: w, announcer: h.announcer, req: r, warm: warm, announced: h.metrics.announced,
		cards: h.Profiles, warmCards: warmCards, warmNext: warmNext}
	return next.ServeHTTP(dw, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
