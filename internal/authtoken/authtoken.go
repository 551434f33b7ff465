// Package authtoken verifies and issues the bearer tokens of the Spark API:
// JWTs signed with HS256 secrets, Ed25519 (EdDSA) or RSA (RS256) keys, a
// token's "kid" header selecting the key. The origin and the edge's
// spark_auth handler both verify with it, so they accept the same tokens.
//
// A Verifier remembers the tokens it verified (a bounded memo), so a
// client's repeat costs a map lookup; the time claims are still checked on
// every use. Errors say why a token was refused (a Reason) and never
// contain the token.
//
// This package is a library: no Caddy, no origin.
package authtoken

import (
	"errors"
	"fmt"
	"time"
)

// DevSecret is the published HS256 development secret: the embedded-store
// origin and `make run`'s edge use it so tokens work out of the box. Anyone
// can mint tokens with it; CheckSecret refuses it.
const DevSecret = "spark-development-secret-not-for-production"

// Limits and defaults.
const (
	// MinSecretBytes is the shortest HS256 secret CheckSecret accepts
	// (RFC 7518 §3.2: a key of at least the hash output size).
	MinSecretBytes = 32
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
	// DefaultMaxLifetime caps how far a token's exp may lie from now and
	// from its iat when Options.MaxLifetime is zero.
	DefaultMaxLifetime = 24 * time.Hour
	// DefaultLeeway is the clock skew callers allow by default.
	DefaultLeeway = 30 * time.Second
	// DefaultMemoSize bounds the memo of verified tokens when
	// Options.MemoSize is zero (about 15 MB of typical tokens).
	DefaultMemoSize = 1 << 16
	// MaxTokenBytes is the longest token looked at; longer ones are
	// refused as malformed before any parsing.
	MaxTokenBytes = 8 << 10
)

// ErrUnauthenticated matches (errors.Is) every error Verify returns.
var ErrUnauthenticated = errors.New("unauthenticated")

// Reason is why a token was refused: one of a fixed set, fit for a metric
// label.
type Reason string

// The reasons a token is refused.
const (
	ReasonMissing     Reason = "missing"       // no Authorization, or not a single bearer credential
	ReasonMalformed   Reason = "malformed"     // not a well-formed JWS compact token
	ReasonAlgorithm   Reason = "algorithm"     // alg not configured (none, an unknown one, or one without keys)
	ReasonUnknownKey  Reason = "unknown_key"   // kid names no key of the token's algorithm
	ReasonSignature   Reason = "signature"     // the signature does not verify
	ReasonExpired     Reason = "expired"       // exp (plus leeway) has passed
	ReasonNotYetValid Reason = "not_yet_valid" // nbf or iat lies in the future
	ReasonIssuer      Reason = "issuer"        // iss is not the configured issuer
	ReasonAudience    Reason = "audience"      // aud does not name the configured audience
	ReasonLifetime    Reason = "lifetime"      // exp lies further than MaxLifetime from now or from iat
	ReasonSubject     Reason = "subject"       // sub is not a positive decimal user id
	ReasonClaims      Reason = "claims"        // a required claim (exp) is missing or invalid
)

// Reasons returns every Reason, for metrics that want each label up front.
func Reasons() []Reason {
	return []Reason{ReasonMissing, ReasonMalformed, ReasonAlgorithm, ReasonUnknownKey, ReasonSignature,
		ReasonExpired, ReasonNotYetValid, ReasonIssuer, ReasonAudience, ReasonLifetime, ReasonSubject, ReasonClaims}
}

// text is the fixed message of a reason.
func (r Reason) text() string {
	switch r {
	case ReasonMissing:
		return "no bearer token"
	case ReasonMalformed:
		return "malformed token"
	case ReasonAlgorithm:
		return "signing algorithm not accepted"
	case ReasonUnknownKey:
		return "no key for the token's kid"
	case ReasonSignature:
		return "signature does not verify"
	case ReasonExpired:
		return "token expired"
	case ReasonNotYetValid:
		return "token not valid yet"
	case ReasonIssuer:
		return "wrong issuer"
	case ReasonAudience:
		return "wrong audience"
	case ReasonLifetime:
		return "token lifetime exceeds the maximum"
	case ReasonSubject:
		return "sub is not a user id"
	}
	return "required claim missing or invalid"
}

// Error is a refused token. Its message is fixed per Reason (it never
// contains the token or any of its claims); Unwrap gives the underlying
// cause (often a golang-jwt error) for errors.Is.
type Error struct {
	Reason Reason
	cause  error
}

// Error implements error.
func (e *Error) Error() string { return "unauthenticated: " + e.Reason.text() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// Is makes every *Error match ErrUnauthenticated.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

// ReasonOf returns the Reason of an error from Verify, or "" if err is not
// one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Errors of CheckSecret.
var (
	// ErrWeakSecret: the secret is shorter than MinSecretBytes.
	ErrWeakSecret = errors.New("secret too short")
	// ErrDevSecret: the secret is DevSecret.
	ErrDevSecret = errors.New("secret is the published development secret")
)

// CheckSecret reports whether an HS256 secret is fit for production: at
// least MinSecretBytes long and not DevSecret. The error never contains
// the secret.
func CheckSecret(secret []byte) error {
	if string(secret) == DevSecret {
		return fmt.Errorf("%w: anyone can mint tokens with it", ErrDevSecret)
	}
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("%w: %d bytes, at least %d are required (e.g. `openssl rand -base64 48`)", ErrWeakSecret, len(secret), MinSecretBytes)
	}
	return nil
}
