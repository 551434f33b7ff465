// Package auth is the Caddy module http.handlers.spark_auth: it verifies
// the request's bearer token at the edge, before anything after it runs (the
// cache included), and answers 401 problem+json when it does not verify.
// On success it sets the placeholder http.auth.user.id to the user id in
// decimal, as Caddy's own authentication handler does, for spark_cache and
// the rest of the route.
//
// Tokens are verified with internal/authtoken, the library the origin uses,
// so an edge configured like its origin accepts exactly the tokens the
// origin accepts: an edge never serves a stored response to a request the
// origin would refuse for want of a token.
//
// This file is the Caddy surface; the request logic is in handler.go.
package auth

import (
	"fmt"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
	"github.com/spark-edge/spark/internal/authtoken"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// UserIDPlaceholder is the placeholder set to the verified user id.
const UserIDPlaceholder = "http.auth.user.id"

// Handler is the spark_auth HTTP handler.
type Handler struct {
	// Config is the token verification: keys, issuer, audience, lifetime
	// and leeway (its fields appear at the top level of the JSON).
	tokenconf.Config

	verifier *authtoken.Verifier
	retired  *atomic.Bool // Cleanup ran: a newer config (or none) took over; see liveHandlers
	metrics  *metrics
	ids      *idValues
	logger   *zap.Logger
}

// Secret is an HS256 secret, optionally named by the kid tokens carry.
type Secret = tokenconf.Secret

// PublicKey is a PEM public key, optionally named by the kid tokens carry.
type PublicKey = tokenconf.PublicKey

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.spark_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves the secrets and keys and builds the verifier. (Caddy
// calls Validate after it.)
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	v, err := h.Verifier(caddy.NewReplacer(), h.logger, "spark_auth")
	if err != nil {
		return err
	}
	h.verifier = v
	h.ids = new(idValues)
	h.metrics, err = newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("spark_auth: register metrics: %w", err)
	}
	h.retired = new(atomic.Bool)
	live.add(h)
	return nil
}

// Cleanup retires the handler: from now on it accepts only tokens a live
// handler (the new config's) accepts too, for the requests an old server
// still takes after a reload returned (see liveHandlers).
func (h *Handler) Cleanup() error {
	if h.retired != nil {
		h.retired.Store(true)
	}
	live.remove(h)
	return nil
}

// Validate checks the configuration as written (before placeholders are
// resolved).
func (h *Handler) Validate() error {
	return h.Config.Validate("spark_auth")
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
