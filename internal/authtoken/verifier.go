package authtoken

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Options configure a Verifier. At least one key is required.
type Options struct {
	// HS256 secrets (several: rotation). CheckSecret is the caller's to
	// apply: tests and the embedded-store origin may use short ones.
	HS256 []HMACKey
	// Ed25519 public keys verify EdDSA tokens.
	Ed25519 []Ed25519Key
	// RS256 public keys (at least MinRSABits) verify RS256 tokens.
	RS256 []RSAKey

	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be one of the token's aud.
	Audience string
	// MaxLifetime refuses tokens whose exp lies further than this from
	// now (plus Leeway) or from their iat. Zero: DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat (zero: none;
	// most callers want DefaultLeeway).
	Leeway time.Duration
	// MemoSize bounds the memo of verified tokens. Zero: DefaultMemoSize;
	// negative: no memo.
	MemoSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Identity is what a verified token grants.
type Identity struct {
	// UserID is the token's sub, a positive integer.
	UserID int64
	// Subject is UserID in decimal (the sub claim as sent, which must be
	// canonical: no sign, no leading zero).
	Subject string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
}

// Verifier checks bearer tokens against its keys and claims. It is safe for
// concurrent use; its configuration is fixed at NewVerifier.
type Verifier struct {
	byAlg       map[string]*algKeys
	parser      *jwt.Parser
	keyfunc     jwt.Keyfunc
	issuer      string
	audience    string
	maxLifetime time.Duration
	leeway      time.Duration
	now         func() time.Time
	memo        *memo
}

// algKeys are the keys of one signing algorithm.
type algKeys struct {
	method jwt.SigningMethod
	byID   map[string]any         // kid -> key
	all    jwt.VerificationKeySet // tried in order when a token has no kid
}

// errors the key function returns, told apart in classify.
var (
	errNoAlgorithm = errors.New("algorithm without keys")
	errUnknownKey  = errors.New("unknown kid")
	errBadKid      = errors.New("kid is not a string")
	errCrit        = errors.New("crit header: no extension is understood")
)

// NewVerifier returns a verifier for o. It refuses an empty key list, empty
// secrets, Ed25519 keys of the wrong size, RSA keys below MinRSABits, two
// keys of one algorithm with the same kid, and negative durations.
func NewVerifier(o Options) (*Verifier, error) {
	if len(o.HS256)+len(o.Ed25519)+len(o.RS256) == 0 {
		return nil, errors.New("authtoken: no key configured (an HS256 secret, an Ed25519 or an RS256 public key)")
	}
	if o.MaxLifetime < 0 || o.Leeway < 0 {
		return nil, errors.New("authtoken: max lifetime and leeway must not be negative")
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.MemoSize == 0 {
		o.MemoSize = DefaultMemoSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{byAlg: map[string]*algKeys{}, issuer: o.Issuer, audience: o.Audience, maxLifetime: o.MaxLifetime, leeway: o.Leeway, now: o.Now, memo: newMemo(o.MemoSize)}
	for i, k := range o.HS256 {
		if len(k.Secret) == 0 {
			return nil, fmt.Errorf("authtoken: HS256 secret %d is empty", i+1)
		}
		if err := v.add(jwt.SigningMethodHS256, k.ID, k.Secret); err != nil {
			return nil, err
		}
	}
	for i, k := range o.Ed25519 {
		if len(k.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("authtoken: Ed25519 key %d has %d bytes, want %d", i+1, len(k.Key), ed25519.PublicKeySize)
		}
		if err := v.add(jwt.SigningMethodEdDSA, k.ID, k.Key); err != nil {
			return nil, err
		}
	}
	for i, k := range o.RS256 {
		if k.Key == nil {
			return nil, fmt.Errorf("authtoken: RS256 key %d is nil", i+1)
		}
		if err := checkRSA(k.Key); err != nil {
			return nil, fmt.Errorf("authtoken: RS256 key %d: %w", i+1, err)
		}
		if err := v.add(jwt.SigningMethodRS256, k.ID, k.Key); err != nil {
			return nil, err
		}
	}
	popts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(o.Leeway), jwt.WithTimeFunc(o.Now)}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	v.keyfunc = v.keyFor
	return v, nil
}

func (v *Verifier) add(m jwt.SigningMethod, kid string, key any) error {
	ak := v.byAlg[m.Alg()]
	if ak == nil {
		ak = &algKeys{method: m, byID: map[string]any{}}
		v.byAlg[m.Alg()] = ak
	}
	if kid != "" {
		if _, dup := ak.byID[kid]; dup {
			return fmt.Errorf("authtoken: two %s keys with kid %q", m.Alg(), kid)
		}
		ak.byID[kid] = key
	}
	ak.all.Keys = append(ak.all.Keys, key)
	return nil
}

// keyFor selects the keys for a parsed, unverified token: those of its
// algorithm only (so a secret never verifies an asymmetric token, nor a
// public key an HMAC), the one its kid names when it has one.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	ak := v.byAlg[t.Method.Alg()]
	// The method must be the one registered for the keys (another package
	// could register its own under the same name).
	if ak == nil || t.Method != ak.method {
		return nil, errNoAlgorithm
	}
	// RFC 7515 §4.1.11: a critical extension we do not understand (we
	// understand none) makes the token invalid.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	raw, ok := t.Header["kid"]
	if !ok {
		return ak.all, nil
	}
	kid, ok := raw.(string)
	if !ok {
		return nil, errBadKid
	}
	k, ok := ak.byID[kid]
	if !ok {
		return nil, errUnknownKey
	}
	return k, nil
}

// Verify checks an Authorization field value (`Bearer <token>`) and
// returns what the token grants. A token verified before is found in the
// memo without parsing or a signature check (no allocation); its exp and
// nbf are checked again on every use.
func (v *Verifier) Verify(header string) (Identity, error) {
	tok, err := BearerToken(header)
	if err != nil {
		return Identity{}, err
	}
	return v.VerifyToken(tok)
}

// VerifyToken is Verify for the token alone.
func (v *Verifier) VerifyToken(tok string) (Identity, error) {
	if len(tok) == 0 || len(tok) > MaxTokenBytes {
		return Identity{}, errMalformed
	}
	now := v.now()
	if v.memo != nil {
		if e, ok := v.memo.get(tok); ok {
			if err := v.checkTimes(e, now); err != nil {
				return Identity{}, err
			}
			return e.id, nil
		}
	}
	var c jwt.RegisteredClaims
	if _, err := v.parser.ParseWithClaims(tok, &c, v.keyfunc); err != nil {
		e := classify(err)
		// golang-jwt reports a missing iss or aud as a missing claim.
		if e.Reason == ReasonClaims && c.ExpiresAt != nil {
			if v.issuer != "" && c.Issuer == "" {
				e.Reason = ReasonIssuer
			} else if v.audience != "" && len(c.Audience) == 0 {
				e.Reason = ReasonAudience
			}
		}
		return Identity{}, e
	}
	// exp is required (the parser checked it is there).
	exp := c.ExpiresAt.Time
	if exp.Sub(now) > v.maxLifetime+v.leeway || (c.IssuedAt != nil && exp.Sub(c.IssuedAt.Time) > v.maxLifetime) {
		return Identity{}, &Error{Reason: ReasonLifetime}
	}
	id, ok := parseUserID(c.Subject)
	if !ok {
		return Identity{}, &Error{Reason: ReasonSubject}
	}
	e := memoEntry{id: Identity{UserID: id, Subject: c.Subject, ExpiresAt: exp}}
	if c.NotBefore != nil {
		e.notBefore = c.NotBefore.Time
	}
	if v.memo != nil {
		v.memo.put(tok, e)
	}
	return e.id, nil
}

// checkTimes applies exp and nbf as golang-jwt does (valid while now is
// before exp+leeway, and not before nbf-leeway).
func (v *Verifier) checkTimes(e memoEntry, now time.Time) error {
	if !now.Before(e.id.ExpiresAt.Add(v.leeway)) {
		return errExpired
	}
	if !e.notBefore.IsZero() && now.Before(e.notBefore.Add(-v.leeway)) {
		return errNotYetValid
	}
	return nil
}

var (
	errExpired     = &Error{Reason: ReasonExpired, cause: jwt.ErrTokenExpired}
	errNotYetValid = &Error{Reason: ReasonNotYetValid, cause: jwt.ErrTokenNotValidYet}
)

// parseUserID accepts a canonical positive decimal int64: digits only, no
// leading zero.
func parseUserID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// classify turns a golang-jwt error into an *Error. The order matters
// where one error carries several causes.
func classify(err error) *Error {
	r := ReasonClaims
	switch {
	case errors.Is(err, errNoAlgorithm):
		r = ReasonAlgorithm
	case errors.Is(err, errUnknownKey):
		r = ReasonUnknownKey
	case errors.Is(err, errBadKid), errors.Is(err, errCrit), errors.Is(err, jwt.ErrTokenMalformed):
		r = ReasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An alg golang-jwt does not know ("none" is known, and refused by
		// keyFor as one without keys).
		r = ReasonAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		r = ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		r = ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		r = ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		r = ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		r = ReasonAudience
	}
	return &Error{Reason: r, cause: err}
}
