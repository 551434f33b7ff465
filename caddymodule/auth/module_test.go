package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

// provision provisions h in a fresh Caddy context, then validates it, as
// Caddy loads a module.
func provision(t testing.TB, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	t.Cleanup(func() { _ = h.Cleanup() })
	if err := h.Provision(ctx); err != nil {
		return err
	}
	return h.Validate()
}

func TestProvisionResolvesPlaceholders(t *testing.T) {
	k := newTestKeys(t)
	pemText, _ := os.ReadFile(k.ed2PEM)
	pemFile := filepath.Join(t.TempDir(), "inline.pem")
	if err := os.WriteFile(pemFile, pemText, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(secretEnv, testSecret)
	t.Setenv("SPARK_AUTH_TEST_KEY_FILE", k.ed1PEM)
	t.Setenv("SPARK_AUTH_TEST_AUD", "spark-api")
	h := &Handler{Config: tokenconf.Config{
		HS256Secrets: []Secret{{Value: "{env." + secretEnv + "}"}, {Value: "{file." + k.oldSecretFile + "}", KeyID: "old"}},
		Ed25519Keys:  []PublicKey{{File: "{env.SPARK_AUTH_TEST_KEY_FILE}", KeyID: "k1"}, {File: "{file." + pemFile + "}", KeyID: "k2"}},
		RS256Keys:    []PublicKey{{File: k.rsaPEM}},
		Audience:     "{env.SPARK_AUTH_TEST_AUD}",
	}}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	// The configured fields keep their placeholders.
	if h.HS256Secrets[0].Value != "{env."+secretEnv+"}" || h.Audience != "{env.SPARK_AUTH_TEST_AUD}" {
		t.Fatalf("provision rewrote the config: %+v", h)
	}
	for kid, key := range map[string]any{"k1": k.ed1, "k2": k.ed2} {
		tok := signEd(t, key, kid, 3)
		if id, err := h.verifier.VerifyToken(tok); err != nil || id.UserID != 3 {
			t.Fatalf("kid %s: %+v %v", kid, id, err)
		}
	}
	old := signHS(t, k.oldSecret, "old", 4) // {file.…} drops the trailing newline
	if _, err := h.verifier.VerifyToken(old); err != nil {
		t.Fatalf("secret from the file: %v", err)
	}
}

// Provision refuses what would leave the edge accepting the wrong tokens,
// and its errors never print a secret.
func TestProvisionRefuses(t *testing.T) {
	k := newTestKeys(t)
	t.Setenv("SPARK_AUTH_TEST_EMPTY", "")
	const shortSecret = "short-literal-secret"
	for name, tc := range map[string]struct {
		h    Handler
		want string
	}{
		"unset env":          {Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: "{env.SPARK_AUTH_TEST_UNSET}"}}}}, "SPARK_AUTH_TEST_UNSET"},
		"empty env":          {Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: "{env.SPARK_AUTH_TEST_EMPTY}"}}}}, "SPARK_AUTH_TEST_EMPTY"},
		"missing file":       {Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: "{file./nonexistent/spark.secret}"}}}}, "hs256_secret 1"},
		"short literal":      {Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: shortSecret}}}}, "at least 32"},
		"unknown in literal": {Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: "abc{nope}" + testSecret}}}}, "unknown or empty"},
		"no key":             {Handler{}, "no key"},
		"missing key file":   {Handler{Config: tokenconf.Config{Ed25519Keys: []PublicKey{{File: "/nonexistent/ed.pem"}}}}, "ed25519_key 1"},
		"RSA as Ed25519":     {Handler{Config: tokenconf.Config{Ed25519Keys: []PublicKey{{File: k.rsaPEM}}}}, "want Ed25519"},
		"Ed25519 as RSA":     {Handler{Config: tokenconf.Config{RS256Keys: []PublicKey{{File: k.ed1PEM}}}}, "want RSA"},
		"duplicate kid":      {Handler{Config: tokenconf.Config{Ed25519Keys: []PublicKey{{File: k.ed1PEM, KeyID: "a"}, {File: k.ed2PEM, KeyID: "a"}}}}, "kid"},
	} {
		h := tc.h
		err := provision(t, &h)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), shortSecret) || strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error prints the secret: %v", name, err)
		}
	}
}
