package auth

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/caddymodule/internal/problem"
)

// checkUnauthorized asserts the edge's own 401: problem+json in the
// origin's shape, the Bearer challenge, no-store, and no trace of the cache
// or of the stored body.
func checkUnauthorized(t *testing.T, what, path string, r *caddytest.Response) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: status %d, want 401 (Cache-Status %q, body %.200q)", what, r.Status, r.Header.Get("Cache-Status"), r.Body)
	}
	if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("%s: Content-Type %q", what, got)
	}
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("%s: WWW-Authenticate %q", what, got)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control %q", what, got)
	}
	if cs := r.Header.Get("Cache-Status"); cs != "" {
		t.Errorf("%s: the cache ran (Cache-Status %q)", what, cs)
	}
	if strings.Contains(r.Body, "origin ") {
		t.Errorf("%s: stored body served: %q", what, r.Body)
	}
	var p problem.Doc
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("%s: body %q: %v", what, r.Body, err)
	}
	want := problem.Doc{Type: "/problems/unauthenticated", Title: "Unauthorized", Status: 401, Detail: "a valid bearer token is required", Instance: path}
	if p != want {
		t.Errorf("%s: problem %+v, want %+v", what, p, want)
	}
}

// Issue 10 item 2 at the edge: a stored profile is served to a valid token
// only. Every bad credential is answered 401 by spark_auth, on a hit and on
// a miss alike, before the cache: the origin sees nothing and the stored
// entry is not served.
func TestRefusesBeforeTheCache(t *testing.T) {
	k := newTestKeys(t)
	e := startEdge(t, defaultAuthBlock(k))
	const prof = "/api/users/2/profile"
	valid := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(7))

	r := e.get(prof, valid)
	if r.Status != 200 || r.Body != "origin "+prof || !strings.Contains(r.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("first fetch: %d %q %q", r.Status, r.Body, r.Header.Get("Cache-Status"))
	}
	r = e.get(prof, valid)
	if r.Status != 200 || r.Body != "origin "+prof || !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("second fetch not a hit: %d %q", r.Status, r.Header.Get("Cache-Status"))
	}
	if n := e.origin.hits("GET", prof); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	// Another user's valid token gets the shared entry too.
	if r = e.get(prof, sign(t, jwt.SigningMethodRS256, k.rsa, "rs1", claims(8))); r.Status != 200 || !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("RS256 user: %d %q", r.Status, r.Header.Get("Cache-Status"))
	}

	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	rsaPubPEM, _ := os.ReadFile(k.rsaPEM)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(7)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	expired := claims(7)
	expired["iat"], expired["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
	wrongAud := claims(7)
	wrongAud["aud"] = "another-api"
	tooLong := claims(7)
	tooLong["exp"] = time.Now().Add(3 * time.Hour).Unix()
	bad := []struct {
		name string
		hdr  []string
	}{
		{"no token", nil},
		{"basic credentials", []string{"Authorization", "Basic N3g6eQ=="}},
		{"garbage", []string{"Authorization", "Bearer garbage"}},
		{"expired", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", expired)}},
		{"wrong signature", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("not-the-secret-but-long-enough-0123456"), "", claims(7))}},
		{"wrong kid", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed1, "k9", claims(7))}},
		{"kid of the other key", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed1, "k2", claims(7))}},
		{"wrong audience", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", wrongAud)}},
		{"beyond max_lifetime", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", tooLong)}},
		{"alg none", []string{"Authorization", "Bearer " + none}},
		{"HS256 signed with the RSA public key PEM", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPubPEM, "", claims(7))}},
		{"HS256 signed with the RSA public key DER, kid rs1", []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPubDER, "rs1", claims(7))}},
		{"a valid and a bad field", []string{"Authorization", "Bearer " + valid, "Authorization", "Bearer garbage"}},
		{"two valid fields", []string{"Authorization", "Bearer " + valid, "Authorization", "Bearer " + valid}},
		{"OPTIONS without a preflight's fields", nil}, // method set below
	}
	for _, tc := range bad {
		method := http.MethodGet
		if strings.HasPrefix(tc.name, "OPTIONS") {
			method = http.MethodOptions
		}
		checkUnauthorized(t, tc.name+" (hit)", prof, e.do(method, prof, tc.hdr...))
		checkUnauthorized(t, tc.name+" (miss)", "/api/users/3/profile", e.do(method, "/api/users/3/profile", tc.hdr...))
		head := e.do(http.MethodHead, prof, tc.hdr...)
		if head.Status != 401 || head.Header.Get("Cache-Status") != "" {
			t.Errorf("%s (HEAD): %d %q", tc.name, head.Status, head.Header.Get("Cache-Status"))
		}
	}
	// Paths that are the protected profile once cleaned.
	for _, p := range []string{"//api/users/2/profile", "/api//users/2/profile", "/API/users/2/profile",
		"/api/users/1/photos/../../2/profile", "/api/users/1/photos/%2e%2e/%2e%2e/2/profile", "/x/../api/users/2/profile"} {
		r := e.do(http.MethodGet, p)
		if r.Status != 401 {
			t.Errorf("anonymous %s: %d %q", p, r.Status, r.Body)
		}
	}
	if n := e.origin.hits("GET", prof) + e.origin.hits("GET", "/api/users/3/profile") + e.origin.hits("OPTIONS", prof); n != 1 {
		t.Fatalf("refused requests reached the origin: %d requests, want the first fetch only", n)
	}
	if got := e.origin.total.Load(); got != 1 {
		t.Fatalf("origin saw %d requests in all, want 1", got)
	}

	// The valid token still gets the stored response.
	if r = e.get(prof, valid); r.Status != 200 || r.Body != "origin "+prof || !strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("valid token after the refusals: %d %q", r.Status, r.Header.Get("Cache-Status"))
	}
	// The verified user id reaches what follows as {http.auth.user.id}.
	if r = e.get("/api/me", sign(t, jwt.SigningMethodEdDSA, k.ed2, "k2", claims(977))); r.Status != 200 || r.Body != "me 977" {
		t.Fatalf("/api/me: %d %q", r.Status, r.Body)
	}
	// CORS preflights pass unauthenticated.
	r = e.do(http.MethodOptions, prof, "Origin", "https://app.spark.example", "Access-Control-Request-Method", "GET")
	if r.Status != http.StatusNoContent || e.origin.hits("OPTIONS", prof) != 1 || e.origin.userOf("OPTIONS", prof) != "" {
		t.Fatalf("preflight: %d, origin saw %d", r.Status, e.origin.hits("OPTIONS", prof))
	}
	// Photo variants are public: GET needs no token; writing there does.
	const photo = "/api/users/2/photos/0123456789abcdef0123456789abcdef.jpg"
	if r = e.get(photo, ""); r.Status != 200 || e.origin.userOf("GET", photo) != "" {
		t.Fatalf("anonymous photo: %d %q", r.Status, r.Body)
	}
	checkUnauthorized(t, "anonymous DELETE of a photo", photo, e.do(http.MethodDelete, photo))
	checkUnauthorized(t, "anonymous POST next to photos", "/api/users/2/photos/x/y", e.do(http.MethodGet, "/api/users/2/photos/x/y"))
}

// Key rotation: two kids verify side by side; a token naming one kid but
// signed by the other key is refused; after a reload without the old key
// (and the old HS256 secret) their tokens are refused, memo or not.
func TestKeyRotation(t *testing.T) {
	k := newTestKeys(t)
	e := startEdge(t, defaultAuthBlock(k))
	const path = "/api/me"
	tk1 := sign(t, jwt.SigningMethodEdDSA, k.ed1, "k1", claims(11))
	tk2 := sign(t, jwt.SigningMethodEdDSA, k.ed2, "k2", claims(12))
	tNoKid := sign(t, jwt.SigningMethodEdDSA, k.ed2, "", claims(13))
	tOld := sign(t, jwt.SigningMethodHS256, []byte(k.oldSecret), "old", claims(14))
	tOldNoKid := sign(t, jwt.SigningMethodHS256, []byte(k.oldSecret), "", claims(15))
	tCur := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(16))
	for tok, want := range map[string]string{tk1: "me 11", tk2: "me 12", tNoKid: "me 13", tOld: "me 14", tOldNoKid: "me 15", tCur: "me 16"} {
		if r := e.get(path, tok); r.Status != 200 || r.Body != want {
			t.Fatalf("before rotation: %d %q, want %q", r.Status, r.Body, want)
		}
	}
	checkUnauthorized(t, "k1 key under kid k2", path, e.get(path, sign(t, jwt.SigningMethodEdDSA, k.ed1, "k2", claims(11))))
	checkUnauthorized(t, "current secret under kid old", path, e.get(path, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "old", claims(16))))

	// Rotate: k1 and the old secret retired.
	e.reload(`hs256_secret {env.` + secretEnv + `}
		ed25519_key ` + k.ed2PEM + ` k2
		audience spark-api`)
	for name, tok := range map[string]string{"k1": tk1, "old secret with kid": tOld, "old secret without kid": tOldNoKid} {
		checkUnauthorized(t, "after rotation: "+name, path, e.get(path, tok))
	}
	for tok, want := range map[string]string{tk2: "me 12", tNoKid: "me 13", tCur: "me 16"} {
		if r := e.get(path, tok); r.Status != 200 || r.Body != want {
			t.Fatalf("after rotation: %d %q, want %q", r.Status, r.Body, want)
		}
	}
}

// Issue 10 item 5 for spark_auth: the admin API's GET /config/ shows the
// placeholders, never the secrets they resolve to.
func TestAdminConfigHoldsOnlyPlaceholders(t *testing.T) {
	k := newTestKeys(t)
	e := startEdge(t, defaultAuthBlock(k))
	res, err := http.Get(e.admin + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	cfg := string(b)
	if res.StatusCode != 200 || !strings.Contains(cfg, `"hs256_secrets"`) {
		t.Fatalf("GET /config/: %d %.300s", res.StatusCode, cfg)
	}
	for _, secret := range []string{testSecret, k.oldSecret} {
		if strings.Contains(cfg, secret) {
			t.Fatalf("GET /config/ shows a secret:\n%s", cfg)
		}
	}
	for _, ph := range []string{"{env." + secretEnv + "}", "{file." + k.oldSecretFile + "}"} {
		if !strings.Contains(cfg, ph) {
			t.Fatalf("GET /config/ lacks the placeholder %s:\n%s", ph, cfg)
		}
	}
	// And the secret behind the placeholder is what verifies.
	if r := e.get("/api/me", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(5))); r.Status != 200 {
		t.Fatalf("token of the env secret: %d", r.Status)
	}
}
