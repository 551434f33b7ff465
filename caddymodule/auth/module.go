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
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/internal/authtoken"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// UserIDPlaceholder is the placeholder set to the verified user id.
const UserIDPlaceholder = "http.auth.user.id"

// Handler is the spark_auth HTTP handler.
type Handler struct {
	// HS256Secrets verify HS256 tokens (several: rotation). Write each as a
	// runtime placeholder, {env.SPARK_JWT_SECRET} or
	// {file./etc/spark/jwt.secret}: it is resolved at provision, so this
	// config (and the admin API's GET /config/) holds only the placeholder.
	// A literal secret works too. Each must be at least 32 bytes.
	HS256Secrets []Secret `json:"hs256_secrets,omitempty"`
	// Ed25519Keys verify EdDSA tokens.
	Ed25519Keys []PublicKey `json:"ed25519_keys,omitempty"`
	// RS256Keys verify RS256 tokens (RSA keys of at least 2048 bits).
	RS256Keys []PublicKey `json:"rs256_keys,omitempty"`
	// Issuer, when set, must equal every token's iss.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be one of every token's aud.
	Audience string `json:"audience,omitempty"`
	// MaxLifetime refuses tokens whose exp lies further than this from now
	// or from their iat. Default 24h (the origin's default).
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	verifier *authtoken.Verifier
	metrics  *metrics
	ids      *idValues
	logger   *zap.Logger
}

// Secret is an HS256 secret, optionally named by the kid tokens carry.
type Secret struct {
	// Value is the secret or, better, a placeholder that yields it.
	Value string `json:"value"`
	// KeyID, when set, is the kid that selects this secret.
	KeyID string `json:"kid,omitempty"`
}

// PublicKey is a PEM public key, optionally named by the kid tokens carry.
type PublicKey struct {
	// File is the PEM file's path. It may be a placeholder yielding the
	// path ({env.SPARK_JWT_KEY_FILE}) or the PEM text itself
	// ({file./etc/spark/jwt.pub}).
	File string `json:"file"`
	// KeyID, when set, is the kid that selects this key.
	KeyID string `json:"kid,omitempty"`
}

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
	o, err := h.options(caddy.NewReplacer())
	if err != nil {
		return err
	}
	v, err := authtoken.NewVerifier(o)
	if err != nil {
		return fmt.Errorf("spark_auth: %w", err)
	}
	h.verifier = v
	h.ids = new(idValues)
	h.metrics, err = newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("spark_auth: register metrics: %w", err)
	}
	return nil
}

// options resolves the configuration into verifier options.
func (h *Handler) options(repl *caddy.Replacer) (authtoken.Options, error) {
	o := authtoken.Options{MaxLifetime: time.Duration(h.MaxLifetime), Leeway: time.Duration(h.Leeway)}
	if o.Leeway == 0 {
		o.Leeway = authtoken.DefaultLeeway
	}
	var err error
	if o.Issuer, err = resolve(repl, h.Issuer, false); err != nil {
		return o, fmt.Errorf("spark_auth: issuer: %w", err)
	}
	if o.Audience, err = resolve(repl, h.Audience, false); err != nil {
		return o, fmt.Errorf("spark_auth: audience: %w", err)
	}
	for i, s := range h.HS256Secrets {
		secret, err := resolve(repl, s.Value, true)
		if err != nil {
			return o, fmt.Errorf("spark_auth: hs256_secret %d: %w", i+1, err)
		}
		if err := authtoken.CheckSecret([]byte(secret)); err != nil {
			if !errors.Is(err, authtoken.ErrDevSecret) {
				return o, fmt.Errorf("spark_auth: hs256_secret %d: %w", i+1, err)
			}
			h.logger.Warn("!!! spark_auth: USING THE PUBLISHED DEVELOPMENT JWT SECRET: anyone can mint tokens. Set SPARK_JWT_SECRET outside development. !!!")
		}
		o.HS256 = append(o.HS256, authtoken.HMACKey{ID: s.KeyID, Secret: []byte(secret)})
	}
	err = parseKeys(repl, h.Ed25519Keys, "ed25519_key", authtoken.ParseEd25519PublicKeyPEM, func(kid string, key ed25519.PublicKey) {
		o.Ed25519 = append(o.Ed25519, authtoken.Ed25519Key{ID: kid, Key: key})
	})
	if err != nil {
		return o, err
	}
	err = parseKeys(repl, h.RS256Keys, "rs256_key", authtoken.ParseRSAPublicKeyPEM, func(kid string, key *rsa.PublicKey) {
		o.RS256 = append(o.RS256, authtoken.RSAKey{ID: kid, Key: key})
	})
	if err != nil {
		return o, err
	}
	return o, nil
}

// parseKeys loads and parses the public keys configured for one algorithm
// (option is the Caddyfile option, for errors), handing each to add.
func parseKeys[K any](repl *caddy.Replacer, keys []PublicKey, option string, parse func([]byte) (K, error), add func(kid string, key K)) error {
	for i, k := range keys {
		data, err := loadPEM(repl, k.File)
		if err != nil {
			return fmt.Errorf("spark_auth: %s %d: %w", option, i+1, err)
		}
		key, err := parse(data)
		if err != nil {
			return fmt.Errorf("spark_auth: %s %d: %w", option, i+1, err)
		}
		add(k.KeyID, key)
	}
	return nil
}

// resolve replaces the runtime placeholders of a configured value. An
// unknown or empty placeholder is an error; so is an empty result when
// required. The error names the placeholder only when the whole value is
// one: a literal secret is never echoed.
func resolve(repl *caddy.Replacer, value string, required bool) (string, error) {
	out, err := repl.ReplaceOrErr(value, true, true)
	if err != nil {
		if isPlaceholder(value) {
			return "", err
		}
		return "", errors.New("a placeholder in the value is unknown or empty")
	}
	if required && out == "" {
		return "", errors.New("empty")
	}
	return out, nil
}

// isPlaceholder reports whether s is exactly one placeholder, {…}.
func isPlaceholder(s string) bool {
	return len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && strings.Count(s, "{") == 1 && strings.Count(s, "}") == 1
}

// loadPEM resolves a key's configured file: the PEM text itself (from a
// {file.…} placeholder) or a path to read.
func loadPEM(repl *caddy.Replacer, file string) ([]byte, error) {
	v, err := resolve(repl, file, true)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	return b, nil
}

// Validate checks the configuration as written (before placeholders are
// resolved).
func (h *Handler) Validate() error {
	if len(h.HS256Secrets)+len(h.Ed25519Keys)+len(h.RS256Keys) == 0 {
		return errors.New("spark_auth: no key configured: hs256_secret, ed25519_key or rs256_key")
	}
	if h.MaxLifetime < 0 || h.Leeway < 0 {
		return errors.New("spark_auth: max_lifetime and leeway must not be negative")
	}
	for _, k := range append(append([]PublicKey(nil), h.Ed25519Keys...), h.RS256Keys...) {
		if k.File == "" {
			return errors.New("spark_auth: a public key without a file")
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
