// Package tokenconf is the bearer-token configuration the plugins that
// verify tokens share (spark_auth, spark_realtime): the JSON fields, the
// Caddyfile options that set them, and their resolution into an
// internal/authtoken Verifier. One spelling of the options, one set of
// checks: an edge configured like its origin accepts exactly the tokens the
// origin accepts, whichever plugin asks.
package tokenconf

import (
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
	"github.com/spark-edge/spark/internal/authtoken"
)

// Config is the token verification a plugin embeds in its module struct.
type Config struct {
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

// CaddyfileSyntax lists the options UnmarshalOption reads, for the
// directives' doc comments:
//
//	hs256_secret <secret> [<kid>]      # repeatable; e.g. {env.SPARK_JWT_SECRET}
//	ed25519_key  <pem file> [<kid>]    # repeatable
//	rs256_key    <pem file> [<kid>]    # repeatable
//	issuer       <iss>
//	audience     <aud>
//	max_lifetime <duration>
//	leeway       <duration>
const CaddyfileSyntax = "hs256_secret ed25519_key rs256_key issuer audience max_lifetime leeway"

// UnmarshalOption reads the token option at the dispenser's cursor (inside
// a directive's block). It reports false, and reads nothing, when the
// option is not one of CaddyfileSyntax's.
func (c *Config) UnmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	switch opt := d.Val(); opt {
	case "hs256_secret":
		value, kid, err := valueAndKeyID(d)
		if err != nil {
			return true, err
		}
		c.HS256Secrets = append(c.HS256Secrets, Secret{Value: value, KeyID: kid})
	case "ed25519_key", "rs256_key":
		file, kid, err := valueAndKeyID(d)
		if err != nil {
			return true, err
		}
		k := PublicKey{File: file, KeyID: kid}
		if opt == "ed25519_key" {
			c.Ed25519Keys = append(c.Ed25519Keys, k)
		} else {
			c.RS256Keys = append(c.RS256Keys, k)
		}
	case "issuer":
		if !d.AllArgs(&c.Issuer) {
			return true, d.ArgErr()
		}
	case "audience":
		if !d.AllArgs(&c.Audience) {
			return true, d.ArgErr()
		}
	case "max_lifetime", "leeway":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		dur, err := duration.Parse(v)
		if err != nil {
			return true, d.Errf("%s: %v", opt, err)
		}
		if opt == "max_lifetime" {
			c.MaxLifetime = caddy.Duration(dur)
		} else {
			c.Leeway = caddy.Duration(dur)
		}
	default:
		return false, nil
	}
	return true, nil
}

// valueAndKeyID reads `<value> [<kid>]`.
func valueAndKeyID(d *caddyfile.Dispenser) (value, kid string, err error) {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return "", "", d.ArgErr()
	}
	if len(args) == 2 {
		kid = args[1]
	}
	return args[0], kid, nil
}

// Validate checks the configuration as written (before placeholders are
// resolved). module prefixes the errors ("spark_auth").
func (c *Config) Validate(module string) error {
	if len(c.HS256Secrets)+len(c.Ed25519Keys)+len(c.RS256Keys) == 0 {
		return fmt.Errorf("%s: no key configured: hs256_secret, ed25519_key or rs256_key", module)
	}
	if c.MaxLifetime < 0 || c.Leeway < 0 {
		return fmt.Errorf("%s: max_lifetime and leeway must not be negative", module)
	}
	for _, keys := range [][]PublicKey{c.Ed25519Keys, c.RS256Keys} {
		for _, k := range keys {
			if k.File == "" {
				return fmt.Errorf("%s: a public key without a file", module)
			}
		}
	}
	return nil
}

// Verifier resolves the secrets and keys (runtime placeholders included)
// and builds the verifier. module prefixes the errors and the warning a
// development secret gets.
func (c *Config) Verifier(repl *caddy.Replacer, logger *zap.Logger, module string) (*authtoken.Verifier, error) {
	o, err := c.Options(repl, logger, module)
	if err != nil {
		return nil, err
	}
	v, err := authtoken.NewVerifier(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", module, err)
	}
	return v, nil
}

// Options resolves the configuration into verifier options.
func (c *Config) Options(repl *caddy.Replacer, logger *zap.Logger, module string) (authtoken.Options, error) {
	o := authtoken.Options{MaxLifetime: time.Duration(c.MaxLifetime), Leeway: time.Duration(c.Leeway)}
	if o.Leeway == 0 {
		o.Leeway = authtoken.DefaultLeeway
	}
	var err error
	if o.Issuer, err = Resolve(repl, c.Issuer, false); err != nil {
		return o, fmt.Errorf("%s: issuer: %w", module, err)
	}
	if o.Audience, err = Resolve(repl, c.Audience, false); err != nil {
		return o, fmt.Errorf("%s: audience: %w", module, err)
	}
	for i, s := range c.HS256Secrets {
		secret, err := Resolve(repl, s.Value, true)
		if err != nil {
			return o, fmt.Errorf("%s: hs256_secret %d: %w", module, i+1, err)
		}
		if err := authtoken.CheckSecret([]byte(secret)); err != nil {
			if !errors.Is(err, authtoken.ErrDevSecret) {
				return o, fmt.Errorf("%s: hs256_secret %d: %w", module, i+1, err)
			}
			logger.Warn("!!! " + module + ": USING THE PUBLISHED DEVELOPMENT JWT SECRET: anyone can mint tokens. Set SPARK_JWT_SECRET outside development. !!!")
		}
		o.HS256 = append(o.HS256, authtoken.HMACKey{ID: s.KeyID, Secret: []byte(secret)})
	}
	err = parseKeys(repl, c.Ed25519Keys, module+": ed25519_key", authtoken.ParseEd25519PublicKeyPEM, func(kid string, key ed25519.PublicKey) {
		o.Ed25519 = append(o.Ed25519, authtoken.Ed25519Key{ID: kid, Key: key})
	})
	if err != nil {
		return o, err
	}
	err = parseKeys(repl, c.RS256Keys, module+": rs256_key", authtoken.ParseRSAPublicKeyPEM, func(kid string, key *rsa.PublicKey) {
		o.RS256 = append(o.RS256, authtoken.RSAKey{ID: kid, Key: key})
	})
	return o, err
}

// parseKeys loads and parses the public keys configured for one algorithm
// (what names the option, for errors), handing each to add.
func parseKeys[K any](repl *caddy.Replacer, keys []PublicKey, what string, parse func([]byte) (K, error), add func(kid string, key K)) error {
	for i, k := range keys {
		data, err := loadPEM(repl, k.File)
		if err != nil {
			return fmt.Errorf("%s %d: %w", what, i+1, err)
		}
		key, err := parse(data)
		if err != nil {
			return fmt.Errorf("%s %d: %w", what, i+1, err)
		}
		add(k.KeyID, key)
	}
	return nil
}

// Resolve replaces the runtime placeholders of a configured secret or
// value (other secrets use it too: an event stream's token). An unknown or
// empty placeholder is an error; so is an empty result when required. The
// error names the placeholder only when the whole value is one: a literal
// secret is never echoed.
func Resolve(repl *caddy.Replacer, value string, required bool) (string, error) {
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
	v, err := Resolve(repl, file, true)
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
