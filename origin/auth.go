package origin

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevJWTSecret is the fixed HS256 secret used with the embedded store when no
// secret is configured, so `spark origin token` works out of the box. Never
// accepted with PostGIS.
const DevJWTSecret = "spark-development-secret-not-for-production"

// ErrUnauthenticated reports a missing, malformed, expired or forged token.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator verifies bearer tokens: HS256 with a shared secret and/or
// EdDSA (Ed25519) with public keys. The token's "sub" is the user id.
type Authenticator struct {
	secret []byte
	keys   []ed25519.PublicKey
	now    func() time.Time

	// verified remembers tokens whose signature checked out, so a client's
	// next request skips the parse and the signature (HMAC or Ed25519); the
	// time claims are still checked on every use.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedToken is what a verified token grants, and when.
type verifiedToken struct {
	id                 int64
	notBefore, expires time.Time // notBefore zero: none
}

// maxVerifiedTokens bounds the verified-token memory (about 15 MB of tokens);
// when full it starts again empty.
const maxVerifiedTokens = 1 << 16

// tokenLeeway is the clock skew allowed on exp and nbf.
const tokenLeeway = 30 * time.Second

// NewAuthenticator returns an authenticator accepting HS256 tokens signed with
// secret (if non-empty) and EdDSA tokens signed by any of keys.
func NewAuthenticator(secret string, keys []ed25519.PublicKey, now func() time.Time) (*Authenticator, error) {
	if secret == "" && len(keys) == 0 {
		return nil, errors.New("auth: neither a JWT secret nor an EdDSA public key is configured")
	}
	if now == nil {
		now = time.Now
	}
	return &Authenticator{secret: []byte(secret), keys: keys, now: now, verified: map[string]verifiedToken{}}, nil
}

// ParseEd25519PublicKeyPEM reads a PKIX "PUBLIC KEY" PEM block holding an
// Ed25519 key.
func ParseEd25519PublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("auth: no PEM block in public key")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("auth: public key is %T, want Ed25519", k)
	}
	return ek, nil
}

// Authenticate checks an Authorization header value and returns the user id.
func (a *Authenticator) Authenticate(header string) (int64, error) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return 0, fmt.Errorf("%w: missing bearer token", ErrUnauthenticated)
	}
	raw := strings.TrimSpace(header[len(prefix):])
	now := a.now()
	a.mu.RLock()
	v, ok := a.verified[raw]
	a.mu.RUnlock()
	if ok {
		if now.After(v.expires.Add(tokenLeeway)) {
			return 0, fmt.Errorf("%w: %w", ErrUnauthenticated, jwt.ErrTokenExpired)
		}
		if !v.notBefore.IsZero() && now.Before(v.notBefore.Add(-tokenLeeway)) {
			return 0, fmt.Errorf("%w: %w", ErrUnauthenticated, jwt.ErrTokenNotValidYet)
		}
		return v.id, nil
	}
	var methods []string
	if len(a.secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(a.keys) > 0 {
		methods = append(methods, jwt.SigningMethodEdDSA.Alg())
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, a.keyFunc(),
		jwt.WithValidMethods(methods), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(tokenLeeway))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: sub %q is not a user id", ErrUnauthenticated, claims.Subject)
	}
	v = verifiedToken{id: id, expires: claims.ExpiresAt.Time} // required above
	if claims.NotBefore != nil {
		v.notBefore = claims.NotBefore.Time
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerifiedTokens {
		clear(a.verified)
	}
	a.verified[raw] = v
	a.mu.Unlock()
	return id, nil
}

func (a *Authenticator) keyFunc() jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case jwt.SigningMethodHS256.Alg():
			return a.secret, nil
		case jwt.SigningMethodEdDSA.Alg():
			// Verify against every configured key; jwt accepts a VerificationKeySet.
			set := jwt.VerificationKeySet{}
			for _, k := range a.keys {
				set.Keys = append(set.Keys, k)
			}
			return set, nil
		}
		return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
	}
}

// IssueToken returns an HS256 token for user id valid for ttl.
func IssueToken(secret string, id int64, ttl time.Duration, now time.Time) (string, error) {
	if secret == "" {
		return "", errors.New("auth: empty secret")
	}
	if id <= 0 {
		return "", fmt.Errorf("auth: user id %d must be positive", id)
	}
	c := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(id, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    "spark-origin",
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}
