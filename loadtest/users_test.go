package loadtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMintToken(t *testing.T) {
	tok, err := MintToken("s3cret", 42, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subOf(tok, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if sub != "42" {
		t.Errorf("sub = %q", sub)
	}
}

// subOf checks an HS256 token like the origin does and returns its sub.
func subOf(tok, secret string) (string, error) {
	claims := &jwt.RegisteredClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return claims.Subject, nil
}

// userOf checks the request's bearer token like the origin does and
// returns the user id it names.
func userOf(r *http.Request, secret string) (int64, error) {
	sub, err := subOf(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), secret)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sub: %w", err)
	}
	return id, nil
}

func TestVUPoolLazyAndShared(t *testing.T) {
	p, err := newVUPool("k", 1_000_000, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]*VU, 8)
	for g := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[g] = p.get(41) }()
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || v.ID != 42 || v.Token == "" {
			t.Fatalf("get(41) gave %p id %d, want one shared user 42", v, v.ID)
		}
	}
	created := 0
	for i := range p.vus {
		if p.vus[i].Load() != nil {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d users created, want only the one used", created)
	}
}
