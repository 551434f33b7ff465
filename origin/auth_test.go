package origin_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// A token verified once is remembered, but its expiry still holds on every
// later use, and a token differing in any byte is verified afresh.
func TestAuthenticatorRemembersVerifiedTokens(t *testing.T) {
	var clock atomic.Int64
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	a, err := origin.NewAuthenticator("auth-cache-secret", nil, func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := origin.IssueToken("auth-cache-secret", 42, time.Hour, start)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if id, err := a.Authenticate("Bearer " + tok); err != nil || id != 42 {
			t.Fatalf("use %d: %d, %v", i, id, err)
		}
	}
	// Same claims, another signature: not accepted from the memory.
	forged := tok[:strings.LastIndexByte(tok, '.')+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := a.Authenticate("Bearer " + forged); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("forged signature: %v", err)
	}
	other, _ := origin.IssueToken("another-secret", 42, time.Hour, start)
	if _, err := a.Authenticate("Bearer " + other); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("token of another secret: %v", err)
	}
	clock.Store(start.Add(time.Hour + 31*time.Second).UnixNano()) // past exp and the leeway
	if _, err := a.Authenticate("Bearer " + tok); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("expired remembered token: %v", err)
	}
}

// runRefused runs the origin with cfg and returns Run's error; an origin
// that starts instead is stopped at once and the test fails.
func runRefused(t *testing.T, cfg origin.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := false
	err := origin.Run(ctx, cfg, quietLog(), func(string) { started = true; cancel() })
	if started || err == nil {
		t.Fatalf("origin started (Run: %v)", err)
	}
	return err
}

// Item 6 of issue 10: with PostGIS (production) the origin refuses the
// published development secret and secrets shorter than 32 bytes, naming
// the flag; the embedded store still takes them.
func TestRunPostGISRefusesWeakSecrets(t *testing.T) {
	pgtest.Open(t, "test_origin_auth")
	base := origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.SchemaURL(t, "test_origin_auth"), PhotoDir: t.TempDir()}
	for name, secret := range map[string]string{
		"development secret": origin.DevJWTSecret,
		"one byte":           "s",
		"31 bytes":           strings.Repeat("k", 31),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.JWTSecret = secret
			err := runRefused(t, cfg)
			if !strings.Contains(err.Error(), "--jwt-secret") || !strings.Contains(err.Error(), "SPARK_JWT_SECRET") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			if len(secret) > 1 && strings.Contains(err.Error(), secret) {
				t.Fatalf("error prints the secret: %v", err)
			}
		})
	}
	// 32 bytes starts.
	cfg := base
	cfg.JWTSecret = strings.Repeat("k", 32)
	startOrigin(t, cfg)

	// The embedded store takes any secret (tests, demos).
	if s, dev, err := origin.ResolveSecret("s", "", false); err != nil || dev || s != "s" {
		t.Fatalf("embedded store, short secret: %q %v %v", s, dev, err)
	}
	if _, dev, err := origin.ResolveSecret(origin.DevJWTSecret, "", false); err != nil || !dev {
		t.Fatalf("embedded store, explicit dev secret: dev=%v %v", dev, err)
	}
}

// --jwt-issuer, --jwt-audience and --jwt-max-lifetime hold on the running
// origin; RS256 and Ed25519 public keys with kids (--jwt-public-key
// kid=path) verify tokens, and a kid naming no key is refused.
func TestRunTokenChecks(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	const secret = "origin-token-checks-secret-0123456789"
	addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 5, DemoSeed: 1, JWTSecret: secret,
		JWTPublicKeys: []string{"rsa-2026=" + testutil.WritePublicKeyPEM(t, dir, "rsa.pem", &rsaKey.PublicKey), testutil.WritePublicKeyPEM(t, dir, "ed.pem", edPub)},
		JWTIssuer:     "https://auth.spark.example", JWTAudience: "spark-api", JWTMaxLifetime: time.Hour})

	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "1", "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(),
			"iss": "https://auth.spark.example", "aud": "spark-api"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		tk := jwt.NewWithClaims(m, c)
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	status := func(tok string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/matches", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name string
		tok  string
		want int
	}{
		{"hs256", sign(jwt.SigningMethodHS256, []byte(secret), "", claims(nil)), 200},
		{"rs256 with its kid", sign(jwt.SigningMethodRS256, rsaKey, "rsa-2026", claims(nil)), 200},
		{"rs256 without kid", sign(jwt.SigningMethodRS256, rsaKey, "", claims(nil)), 200},
		{"eddsa", sign(jwt.SigningMethodEdDSA, edKey, "", claims(nil)), 200},
		{"unknown kid", sign(jwt.SigningMethodRS256, rsaKey, "rsa-2025", claims(nil)), 401},
		{"wrong issuer", sign(jwt.SigningMethodHS256, []byte(secret), "", claims(func(c jwt.MapClaims) { c["iss"] = "spark-origin" })), 401},
		{"wrong audience", sign(jwt.SigningMethodHS256, []byte(secret), "", claims(func(c jwt.MapClaims) { c["aud"] = "other" })), 401},
		{"beyond the max lifetime", sign(jwt.SigningMethodHS256, []byte(secret), "",
			claims(func(c jwt.MapClaims) { c["exp"] = now.Add(2 * time.Hour).Unix() })), 401},
		{"HS256 signed with the RSA public key", sign(jwt.SigningMethodHS256, mustReadFile(t, filepath.Join(dir, "rsa.pem")), "", claims(nil)), 401},
	} {
		if got := status(tc.tok); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// The library's issuer helper makes what this origin accepts.
	tok, err := authtoken.Issue([]byte(secret), 1, authtoken.IssueOptions{TTL: time.Hour, Issuer: "https://auth.spark.example", Audience: "spark-api"})
	if err != nil || status(tok) != 200 {
		t.Fatalf("issued token: %v", err)
	}
}

// Bad key configuration stops the origin with a clear error.
func TestRunRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPath := testutil.WritePublicKeyPEM(t, dir, "small.pem", &small.PublicKey)
	for name, cfg := range map[string]origin.Config{
		"missing key file":      {JWTPublicKeys: []string{filepath.Join(dir, "absent.pem")}},
		"1024-bit RSA key":      {JWTPublicKeys: []string{smallPath}},
		"negative max lifetime": {JWTMaxLifetime: -time.Second},
	} {
		cfg.Listen = "127.0.0.1:0"
		if err := runRefused(t, cfg); err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
