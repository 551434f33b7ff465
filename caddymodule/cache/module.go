// Package cache is the Caddy module http.handlers.spark_cache: an RFC 9111
// response cache for the Spark API with per-path rules, private per-user
// entries, tag purges and Cache-Status on every response it handles.
//
// This file is the Caddy surface; the logic lives in plain types (Cache,
// Policy, the key and freshness functions) that tests use without Caddy.
package cache

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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
	caddy.RegisterModule(PurgeAPI{})
	caddy.RegisterModule(PurgeHandler{})
}

// Defaults of the Handler's size settings.
const (
	DefaultCapacity     = 256 << 20
	DefaultMaxEntrySize = 1 << 20
)

// pool holds each named cache's storage and metrics across config reloads.
var pool = caddy.NewUsagePool()

// pooled is the state of one named cache that outlives a config.
type pooled struct {
	name    string
	store   *tiered.Cache
	metrics *metrics
	// token is the purge token of the most recently loaded config.
	token atomic.Pointer[string]
	// cache is the most recently provisioned handler's logic (its rules
	// normalize purge keys).
	cache atomic.Pointer[Cache]
}

// Destruct frees the storage when no config uses the cache any more.
func (p *pooled) Destruct() error { return p.store.Close() }

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
	// PurgeToken is the bearer token purges require: POST /spark/purge on
	// the admin endpoint, and the spark_purge handler. Write it as a runtime
	// placeholder ({env.SPARK_PURGE_TOKEN}, {file./etc/spark/purge-token}):
	// it is resolved at provision, so the config (and the admin API's GET
	// /config/) holds only the placeholder. A literal token works too, and
	// is shown there. Empty (or an unset variable): purges are refused.
	PurgeToken string `json:"purge_token,omitempty"`
	// Encodings are the content codings the edge produces (the encode
	// directive's), best first; Accept-Encoding is bucketed to these for
	// keys. Default: zstd, br, gzip.
	Encodings []string `json:"encodings,omitempty"`
	// Defaults is the policy for paths no rule matches, and the fallback for
	// fields a rule leaves unset.
	Defaults Policy `json:"defaults,omitempty"`
	// Rules are per-path policies; the first whose path matches applies.
	Rules []Rule `json:"rules,omitempty"`
	// Redis adds a shared second tier (L2) and purges that reach every edge
	// using the same Redis. Without it the cache is L1 only.
	Redis *RedisConfig `json:"redis,omitempty"`

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
	if err := h.Validate(); err != nil {
		return err
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
		return &pooled{name: h.Name, store: store, metrics: newMetrics(store, h.Name)}, nil
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
	h.state.cache.Store(h.cache)
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
	for _, r := range h.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("spark_cache: %w", err)
		}
		if err := checkDurations(r.TTL, r.StaleWhileRevalidate, r.StaleIfError); err != nil {
			return fmt.Errorf("spark_cache: rule %q: %w", r.Path, err)
		}
	}
	if h.Redis != nil {
		if err := h.Redis.validate(); err != nil {
			return fmt.Errorf("spark_cache redis: %w", err)
		}
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

// Cleanup releases this config's hold on the store; the store itself lives
// on while a newer config uses it.
func (h *Handler) Cleanup() error {
	if h.cache != nil {
		done := make(chan struct{})
		go func() { h.cache.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
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

// RedisConfig configures the Redis second tier.
type RedisConfig struct {
	// Addresses of the Redis node, the Cluster's seed nodes, or the
	// sentinels (with MasterName). Two or more addresses mean a Cluster.
	Addresses []string `json:"addresses"`
	// Cluster forces Cluster mode with a single seed address.
	Cluster bool `json:"cluster,omitempty"`
	// MasterName selects Sentinel mode: the monitored master's name.
	MasterName string `json:"master_name,omitempty"`
	// Username and Password authenticate to Redis (ACL user, or the
	// requirepass password alone). Like purge_token they take runtime
	// placeholders ({env.SPARK_REDIS_PASSWORD}, {file./path}), resolved at
	// provision so the config holds only their names; a placeholder that
	// comes out empty is an error.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	DB       int    `json:"db,omitempty"`
	// PoolSize and MinIdleConns are per node (defaults 200 and 50).
	PoolSize     int `json:"pool_size,omitempty"`
	MinIdleConns int `json:"min_idle_conns,omitempty"`
	// Timeouts (defaults: dial 1s, read and write 250ms).
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// KeyPrefix starts every key and the purge channel (default "spark:").
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Codec compresses stored values: s2 (default), zstd or none.
	Codec string `json:"codec,omitempty"`
}

// options returns the tiered store's Redis options, the credentials'
// placeholders resolved.
func (r *RedisConfig) options() (tiered.RedisOptions, error) {
	o := tiered.DefaultRedisOptions(r.Addresses...)
	o.Cluster, o.MasterName, o.DB = r.Cluster, r.MasterName, r.DB
	var err error
	if o.Username, err = resolveSecret(r.Username, true); err != nil {
		return o, fmt.Errorf("username: %w", err)
	}
	if o.Password, err = resolveSecret(r.Password, true); err != nil {
		return o, fmt.Errorf("password: %w", err)
	}
	if r.PoolSize > 0 {
		o.PoolSize = r.PoolSize
		o.MinIdleConns = min(o.MinIdleConns, r.PoolSize)
	}
	if r.MinIdleConns > 0 {
		o.MinIdleConns = r.MinIdleConns
	}
	if r.DialTimeout > 0 {
		o.DialTimeout = time.Duration(r.DialTimeout)
	}
	if r.ReadTimeout > 0 {
		o.ReadTimeout = time.Duration(r.ReadTimeout)
	}
	if r.WriteTimeout > 0 {
		o.WriteTimeout = time.Duration(r.WriteTimeout)
	}
	if r.KeyPrefix != "" {
		o.KeyPrefix = r.KeyPrefix
	}
	if r.Codec != "" {
		o.Codec = tiered.Codec(r.Codec)
	}
	return o, nil
}

func (r *RedisConfig) validate() error {
	if len(r.Addresses) == 0 {
		return fmt.Errorf("at least one address is required")
	}
	switch r.Codec {
	case "", "s2", "zstd", "none":
	default:
		return fmt.Errorf("codec %q: want s2, zstd or none", r.Codec)
	}
	if r.PoolSize < 0 || r.MinIdleConns < 0 || r.DB < 0 {
		return fmt.Errorf("pool_size, min_idle_conns and db must not be negative")
	}
	if r.MinIdleConns > 0 && r.PoolSize > 0 && r.MinIdleConns > r.PoolSize {
		return fmt.Errorf("min_idle_conns %d exceeds pool_size %d", r.MinIdleConns, r.PoolSize)
	}
	for _, d := range []caddy.Duration{r.DialTimeout, r.ReadTimeout, r.WriteTimeout} {
		if d < 0 || time.Duration(d) > duration.Max {
			return fmt.Errorf("timeout %s must be between 0 and %s", time.Duration(d), duration.Max)
		}
	}
	return nil
}

// checkToken reports whether the request's bearer token equals the
// cache's purge token. An unset token matches nothing.
func (p *pooled) checkToken(r *http.Request) bool {
	want := p.token.Load()
	if want == nil || *want == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(*want)) == 1
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
