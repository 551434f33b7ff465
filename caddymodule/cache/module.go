// Package cache is the Caddy module http.handlers.spark_cache: an RFC 9111
// response cache for the Spark API with policies chosen by Caddy request
// matchers, private per-user entries, tag purges and Cache-Status on every
// response it handles; with http.handlers.spark_purge and the admin module
// admin.api.spark_cache for purges, and the app spark_cache (app.go) through
// which other plugins of the config purge by tag (caddymodule/internal/tagpurge).
//
// This file is the Caddy surface of spark_cache (caddyfile.go its
// Caddyfile, admin.go the purge modules'); the logic lives in plain types
// that tests use without Caddy, in files by mechanism: cache.go and
// exchange.go (one request's pass), serve.go (hits), fill.go (misses and
// storing), revalidate.go, invalidate.go, status.go (Cache-Status and the
// placeholders), key.go, freshness.go, entry.go, deny.go.
package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
	"github.com/spark-edge/spark/tiered"
)

func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(AdminAPI{})
	caddy.RegisterModule(PurgeHandler{})
	caddy.RegisterModule(new(PurgeApp))
}

// Defaults of the Handler's size settings.
const (
	// DefaultCapacity is the L1 capacity when none is given: 256 MiB.
	DefaultCapacity = 256 << 20
	// DefaultMaxEntrySize is the largest stored response when none is
	// given: 1 MiB.
	DefaultMaxEntrySize = 1 << 20
)

// Handler is the spark_cache HTTP handler.
type Handler struct {
	// Name identifies the cache's storage. Handlers with the same name,
	// capacity and max entry size share one store, and the store survives
	// config reloads. Default: "default".
	Name string `json:"name,omitempty"`
	// Capacity is the most bytes the in-process cache (L1) holds. Default
	// 256 MiB.
	Capacity int64 `json:"capacity,omitempty"`
	// MaxEntrySize is the largest response (headers and body) stored;
	// larger ones stream through uncached. Default 1 MiB.
	MaxEntrySize int64 `json:"max_entry_size,omitempty"`
	// PurgeToken is the bearer token purges require: POST
	// /spark_cache/purge on the admin endpoint, and the spark_purge
	// handler. Write it as a runtime placeholder ({env.SPARK_PURGE_TOKEN},
	// {file./etc/spark/purge-token}): it is resolved at provision, so the
	// config (and the admin API's GET /config/) holds only the placeholder.
	// A literal token works too, and is shown there. Empty (or an unset
	// variable): purges are refused.
	PurgeToken string `json:"purge_token,omitempty"`
	// Identity is the placeholder an authenticating handler before the
	// cache sets to the verified user, e.g. spark_auth's
	// {http.auth.user.id}: private variants (and Vary: Authorization) are
	// then keyed by that user instead of a hash of the token, so they
	// outlive token renewal. Only {http.auth.*} placeholders are accepted
	// (set by a handler, never by the client); where it is unset for a
	// request, the token's hash keys it as without this option.
	Identity string `json:"identity,omitempty"`
	// Encodings are the content codings the edge produces (the encode
	// directive's), best first; Accept-Encoding is bucketed to these for
	// keys. Default: zstd, br, gzip.
	Encodings []string `json:"encodings,omitempty"`
	// Defaults is the policy for requests no rule selects, and the fallback
	// for fields a rule leaves unset.
	Defaults Policy `json:"defaults,omitempty"`
	// Rules are policies for the requests their matchers select; the first
	// that selects a request applies.
	Rules []Rule `json:"rules,omitempty"`
	// Redis adds a shared second tier (L2) and purges that reach every edge
	// using the same Redis. Without it the cache is L1 only.
	Redis *RedisConfig `json:"redis,omitempty"`

	// cache is this config's logic; state the pooled store it uses, under
	// poolKey.
	cache   *Cache
	poolKey string
	state   *pooled
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_cache",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the cache, reusing the store of a previous config.
// (Caddy calls Validate next.)
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.Name == "" {
		h.Name = "default"
	}
	if h.Capacity == 0 {
		h.Capacity = DefaultCapacity
	}
	if h.MaxEntrySize == 0 {
		h.MaxEntrySize = DefaultMaxEntrySize
	}
	if len(h.Encodings) == 0 {
		h.Encodings = []string{"zstd", "br", "gzip"}
	}
	for i := range h.Rules {
		if err := h.Rules[i].provision(ctx); err != nil {
			return fmt.Errorf("spark_cache %q %s: %w", h.Name, h.Rules[i].name(i), err)
		}
	}
	token, err := resolveSecret(h.PurgeToken, false)
	if err != nil {
		return fmt.Errorf("spark_cache %q: purge_token: %w", h.Name, err)
	}
	if token != "" && token == h.PurgeToken {
		ctx.Logger().Warn("purge_token is written literally, so the admin API's GET /config/ shows it; use {env.SPARK_PURGE_TOKEN} or {file./path}",
			zap.String("cache", h.Name))
	}
	opts := tiered.Options{
		Capacity:     h.Capacity,
		MaxEntrySize: int(h.MaxEntrySize),
		Logger:       slog.New(zapslog.NewHandler(ctx.Logger().Core())),
	}
	h.poolKey = fmt.Sprintf("%s/%d/%d", h.Name, h.Capacity, h.MaxEntrySize)
	if h.Redis != nil {
		ro, err := h.Redis.options()
		if err != nil {
			return fmt.Errorf("spark_cache %q redis: %w", h.Name, err)
		}
		opts.Redis = &ro
		// A changed Redis setting (a rotated password included) makes a new
		// store; the same one is reused. The key is a hash: it holds no
		// secret.
		rk, _ := json.Marshal(h.Redis)
		h.poolKey += "/" + hashValue(string(rk)+"\x00"+ro.Username+"\x00"+ro.Password)
	}
	v, _, err := pool.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		store, err := tiered.New(context.Background(), opts)
		if err != nil {
			return nil, fmt.Errorf("spark_cache %q: %w", h.Name, err)
		}
		return &pooled{name: h.Name, store: store, metrics: newMetrics(store, h.Name), hot: newHotEntries(h.Capacity)}, nil
	})
	if err != nil {
		return err
	}
	h.state = v.(*pooled)
	h.state.token.Store(&token)
	if err := h.state.metrics.register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("spark_cache %q: register metrics: %w", h.Name, err)
	}
	h.cache = newCache(h.state.store, h.state.metrics, ctx.Logger(), h.Defaults, h.Rules, h.Encodings, int(h.MaxEntrySize))
	h.cache.bg = detachRequest
	h.cache.identity = identityPlaceholder(h.Identity)
	h.cache.hot = h.state.hot
	h.state.cache.Store(h.cache)
	if err := h.registerPurges(ctx); err != nil {
		return fmt.Errorf("spark_cache %q: register for tag purges: %w", h.Name, err)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.Capacity < 1<<20 {
		return fmt.Errorf("spark_cache: capacity %d is below 1 MiB", h.Capacity)
	}
	if h.MaxEntrySize <= 0 || h.MaxEntrySize > h.Capacity/4 {
		return fmt.Errorf("spark_cache: max_entry_size %d must be positive and at most a quarter of the capacity", h.MaxEntrySize)
	}
	if err := h.Defaults.validate(); err != nil {
		return fmt.Errorf("spark_cache defaults: %w", err)
	}
	if err := checkDurations(h.Defaults.TTL, h.Defaults.StaleWhileRevalidate, h.Defaults.StaleIfError); err != nil {
		return fmt.Errorf("spark_cache defaults: %w", err)
	}
	for i, r := range h.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("spark_cache: %w", err)
		}
		if err := checkDurations(r.TTL, r.StaleWhileRevalidate, r.StaleIfError); err != nil {
			return fmt.Errorf("spark_cache: %s: %w", r.name(i), err)
		}
	}
	if h.Redis != nil {
		if err := h.Redis.validate(); err != nil {
			return fmt.Errorf("spark_cache redis: %w", err)
		}
	}
	if h.Identity != "" && identityPlaceholder(h.Identity) == "" {
		return fmt.Errorf("spark_cache: identity %q must be one {http.auth.*} placeholder, which an authenticating handler sets (e.g. spark_auth's {http.auth.user.id})", h.Identity)
	}
	for _, e := range h.Encodings {
		if e == "" || strings.ContainsAny(e, ", ;") {
			return fmt.Errorf("spark_cache: invalid encoding %q", e)
		}
	}
	return nil
}

// checkDurations refuses policy durations longer than duration.Max (a JSON
// config can hold any int64; the Caddyfile parser already refuses them).
func checkDurations(ttl caddy.Duration, windows ...*caddy.Duration) error {
	for _, d := range append([]*caddy.Duration{&ttl}, windows...) {
		if d != nil && time.Duration(*d) > duration.Max {
			return fmt.Errorf("duration %s is longer than the maximum %s", time.Duration(*d), duration.Max)
		}
	}
	return nil
}

// resolveSecret returns a secret setting with its runtime placeholders
// ({env.*}, {file.*}) replaced. An unknown placeholder is an error, so a
// typo never becomes the secret itself; so is one that comes out empty
// when notEmpty is set.
func resolveSecret(v string, notEmpty bool) (string, error) {
	s, err := caddy.NewReplacer().ReplaceOrErr(v, notEmpty, true)
	if err != nil {
		return "", fmt.Errorf("resolve placeholders: %w", err)
	}
	return s, nil
}

// Cleanup ends this config's background refreshes and releases its hold
// on the store; the store itself lives on while a newer config uses it.
func (h *Handler) Cleanup() error {
	if h.cache != nil {
		h.cache.Close()
	}
	_, err := pool.Delete(h.poolKey)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.cache.ServeHTTP(w, r, next)
}

// detachRequest returns a copy of r for background work: its context keeps
// the values but not the cancellation of the client's request, and it has a
// replacer and variables of its own so it races with nothing the client's
// request still uses (logging reads them after the handler returns).
func detachRequest(r *http.Request) *http.Request {
	bg := r.Clone(context.WithoutCancel(r.Context()))
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return caddyhttp.PrepareRequest(bg, caddy.NewReplacer(), nil, srv)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// identityPlaceholder is the placeholder name an Identity setting holds
// ("{http.auth.user.id}": "http.auth.user.id"); "" when it is not one
// {http.auth.*} placeholder.
func identityPlaceholder(v string) string {
	name, ok := strings.CutPrefix(v, "{")
	if !ok {
		return ""
	}
	if name, ok = strings.CutSuffix(name, "}"); !ok || !strings.HasPrefix(name, "http.auth.") || len(name) == len("http.auth.") {
		return ""
	}
	if strings.ContainsAny(name, "{} ") {
		return ""
	}
	return name
}
