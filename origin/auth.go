package origin

import (
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spark-edge/spark/internal/authtoken"
)

// DevJWTSecret is the fixed HS256 secret used with the embedded store when no
// secret is configured, so `spark origin token` works out of the box. Never
// accepted with PostGIS.
const DevJWTSecret = authtoken.DevSecret

// DefaultTokenIssuer is the iss of tokens `spark origin token` issues when
// no --jwt-issuer is configured.
const DefaultTokenIssuer = "spark-origin"

// ErrUnauthenticated reports a missing, malformed, expired or forged token
// (it matches every error Authenticate returns).
var ErrUnauthenticated = authtoken.ErrUnauthenticated

// Authenticator verifies bearer tokens with an authtoken.Verifier: HS256
// with a shared secret, EdDSA (Ed25519) and RS256 with public keys. The
// token's "sub" is the user id. The edge's spark_auth verifies with the same
// library, so both accept the same tokens when configured alike.
type Authenticator struct {
	v *authtoken.Verifier
}

// NewAuthenticator returns an authenticator accepting HS256 tokens signed with
// secret (if non-empty) and EdDSA tokens signed by any of keys, with the
// default lifetime cap and leeway (tests and the embedded store).
func NewAuthenticator(secret string, keys []ed25519.PublicKey, now func() time.Time) (*Authenticator, error) {
	o := authtoken.Options{Leeway: authtoken.DefaultLeeway, Now: now}
	if secret != "" {
		o.HS256 = []authtoken.HMACKey{{Secret: []byte(secret)}}
	}
	for _, k := range keys {
		o.Ed25519 = append(o.Ed25519, authtoken.Ed25519Key{Key: k})
	}
	v, err := authtoken.NewVerifier(o)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Authenticator{v: v}, nil
}

// AuthenticatorFor returns an authenticator verifying with v.
func AuthenticatorFor(v *authtoken.Verifier) *Authenticator { return &Authenticator{v: v} }

// Authenticate checks an Authorization header value and returns the user id.
func (a *Authenticator) Authenticate(header string) (int64, error) {
	id, err := a.v.Verify(header)
	if err != nil {
		return 0, err
	}
	return id.UserID, nil
}

// ParseEd25519PublicKeyPEM reads a PKIX "PUBLIC KEY" PEM block holding an
// Ed25519 key.
func ParseEd25519PublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	k, err := authtoken.ParseEd25519PublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return k, nil
}

// IssueToken returns an HS256 token for user id valid for ttl, issued by
// DefaultTokenIssuer.
func IssueToken(secret string, id int64, ttl time.Duration, now time.Time) (string, error) {
	return authtoken.Issue([]byte(secret), id, authtoken.IssueOptions{TTL: ttl, Now: now, Issuer: DefaultTokenIssuer})
}

// LoadPublicKeys reads the PEM public keys of --jwt-public-key: each spec
// is a file path, or kid=path to name the key. Ed25519 keys verify EdDSA
// tokens, RSA keys (at least 2048 bits) RS256 tokens.
func LoadPublicKeys(specs []string) ([]authtoken.Ed25519Key, []authtoken.RSAKey, error) {
	var eds []authtoken.Ed25519Key
	var rss []authtoken.RSAKey
	for _, spec := range specs {
		kid, path := "", spec
		if k, p, ok := strings.Cut(spec, "="); ok {
			kid, path = k, p
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("origin: read public key: %w", err)
		}
		k, err := authtoken.ParsePublicKeyPEM(b)
		if err != nil {
			return nil, nil, fmt.Errorf("origin: public key %s: %w", path, err)
		}
		switch k := k.(type) {
		case ed25519.PublicKey:
			eds = append(eds, authtoken.Ed25519Key{ID: kid, Key: k})
		case *rsa.PublicKey:
			rss = append(rss, authtoken.RSAKey{ID: kid, Key: k})
		}
	}
	return eds, rss, nil
}

// NewConfiguredAuthenticator builds the authenticator Run uses from cfg's
// JWT settings: the HS256 secret (ResolveSecret: the development secret
// with the embedded store only; with PostGIS at least 32 bytes and never
// the development secret), the public keys, issuer, audience and lifetime
// cap. dev reports that the development secret is in use.
func NewConfiguredAuthenticator(cfg Config) (a *Authenticator, dev bool, err error) {
	eds, rss, err := LoadPublicKeys(cfg.JWTPublicKeys)
	if err != nil {
		return nil, false, err
	}
	secret, dev, err := ResolveSecret(cfg.JWTSecret, cfg.DatabaseURL, len(eds)+len(rss) > 0)
	if err != nil {
		return nil, false, err
	}
	if cfg.JWTMaxLifetime < 0 {
		return nil, false, fmt.Errorf("origin: --jwt-max-lifetime %v must not be negative", cfg.JWTMaxLifetime)
	}
	o := authtoken.Options{Ed25519: eds, RS256: rss, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		MaxLifetime: cfg.JWTMaxLifetime, Leeway: authtoken.DefaultLeeway}
	if secret != "" {
		o.HS256 = []authtoken.HMACKey{{Secret: []byte(secret)}}
	}
	v, err := authtoken.NewVerifier(o)
	if err != nil {
		return nil, false, fmt.Errorf("origin: %w", err)
	}
	return AuthenticatorFor(v), dev, nil
}
