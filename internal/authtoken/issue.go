package authtoken

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssueOptions are the claims and header of an issued token besides its
// subject.
type IssueOptions struct {
	// TTL is the token's lifetime (exp - iat); it must be positive.
	TTL time.Duration
	// Now is the token's iat (zero: time.Now()).
	Now time.Time
	// Issuer and Audience become iss and aud when set.
	Issuer, Audience string
	// KeyID becomes the kid header when set.
	KeyID string
}

// Issue returns an HS256 token for user id signed with secret: sub is the
// id in decimal, iat is o.Now, exp is o.Now + o.TTL.
func Issue(secret []byte, id int64, o IssueOptions) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("authtoken: issue: empty secret")
	}
	if id <= 0 {
		return "", fmt.Errorf("authtoken: issue: user id %d must be positive", id)
	}
	if o.TTL <= 0 {
		return "", fmt.Errorf("authtoken: issue: lifetime %v must be positive", o.TTL)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	c := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(id, 10),
		IssuedAt:  jwt.NewNumericDate(o.Now),
		ExpiresAt: jwt.NewNumericDate(o.Now.Add(o.TTL)),
		Issuer:    o.Issuer,
	}
	if o.Audience != "" {
		c.Audience = jwt.ClaimStrings{o.Audience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	if o.KeyID != "" {
		t.Header["kid"] = o.KeyID
	}
	s, err := t.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("authtoken: sign token for user %d: %w", id, err)
	}
	return s, nil
}
