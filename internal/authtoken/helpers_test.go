package authtoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test keys, made once per test binary (RSA generation is slow under -race).
var (
	keysOnce        sync.Once
	testRSA         *rsa.PrivateKey
	testRSA2        *rsa.PrivateKey
	testRSA3        *rsa.PrivateKey // configured nowhere
	testEd, testEd2 ed25519.PrivateKey
)

type ed25519PublicKey = ed25519.PublicKey

func testKeys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testRSA2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testRSA3, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		_, testEd, _ = ed25519.GenerateKey(rand.Reader)
		_, testEd2, _ = ed25519.GenerateKey(rand.Reader)
	})
}

// testSecret and otherSecret are HS256 secrets of production length.
var (
	testSecret  = []byte("authtoken-test-secret-0123456789abcdef")
	otherSecret = []byte("authtoken-other-secret-0123456789abcdef")
)

// t0 is the tests' fixed clock.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// claims are the standard claims of a user-1 token valid for an hour at t0.
func claims() jwt.MapClaims {
	return jwt.MapClaims{"sub": "1", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
}

// sign signs c with method and key, setting kid when non-empty.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// pkixPEM returns the PEM "PUBLIC KEY" encoding of pub.
func pkixPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// fixedClock returns a clock reading *at.
func fixedClock(at *time.Time) func() time.Time { return func() time.Time { return *at } }
