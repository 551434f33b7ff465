package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/origin"
)

// tokenCommand returns `token` under a parent carrying the persistent flags
// the origin command gives it.
func tokenCommand() *cobra.Command {
	parent := &cobra.Command{Use: "origin"}
	parent.PersistentFlags().String("database-url", "", "")
	addJWTFlags(parent)
	parent.AddCommand(tokenCmd())
	return parent
}

func TestTokenCommandOnePerUser(t *testing.T) {
	const secret = "token-command-test-secret"
	cmd := tokenCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"token", "--jwt-secret", secret, "--user", "7,42", "--user", "9"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	auth, err := origin.NewAuthenticator(secret, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{7, 42, 9}
	if len(lines) != len(want) {
		t.Fatalf("got %d tokens, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		id, err := auth.Authenticate("Bearer " + line)
		if err != nil || id != want[i] {
			t.Errorf("token %d: user %d, %v; want user %d", i, id, err, want[i])
		}
	}
}

func TestTokenCommandRejectsBadUser(t *testing.T) {
	for _, args := range [][]string{
		{"token", "--jwt-secret", "s", "--user", "0"},
		{"token", "--jwt-secret", "s", "--user", "x"},
		{"token", "--jwt-secret", "s"},
	} {
		cmd := tokenCommand()
		cmd.SetOut(new(bytes.Buffer))
		cmd.SetErr(new(bytes.Buffer))
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// issueWith runs `origin token` with args and returns its one token.
func issueWith(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := tokenCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(new(bytes.Buffer))
	cmd.SetArgs(append([]string{"token"}, args...))
	err := cmd.Execute()
	return strings.TrimSpace(out.String()), err
}

// The token command issues within --jwt-max-lifetime (by default all of
// it), with --jwt-issuer and --jwt-audience, so the origin configured with
// the same flags accepts its tokens.
func TestTokenCommandHonoursTokenSettings(t *testing.T) {
	const secret = "token-command-settings-secret-0123456789"
	tok, err := issueWith(t, "--jwt-secret", secret, "--user", "5", "--jwt-issuer", "https://auth.spark.example",
		"--jwt-audience", "spark-api", "--jwt-max-lifetime", "2h")
	if err != nil {
		t.Fatal(err)
	}
	v, err := authtoken.NewVerifier(authtoken.Options{HS256: []authtoken.HMACKey{{Secret: []byte(secret)}},
		Issuer: "https://auth.spark.example", Audience: "spark-api", MaxLifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.VerifyToken(tok)
	if err != nil || id.UserID != 5 {
		t.Fatalf("issued token: %+v %v", id, err)
	}
	if life := time.Until(id.ExpiresAt); life < 2*time.Hour-time.Minute || life > 2*time.Hour {
		t.Fatalf("default ttl: token lives %v, want the max lifetime 2h", life)
	}
	if _, err := issueWith(t, "--jwt-secret", secret, "--user", "5", "--ttl", "25h"); err == nil ||
		!strings.Contains(err.Error(), "--jwt-max-lifetime") {
		t.Fatalf("ttl beyond the default 24 h max lifetime: %v", err)
	}
	if _, err := issueWith(t, "--jwt-secret", secret, "--user", "5", "--ttl", "3h", "--jwt-max-lifetime", "2h"); err == nil {
		t.Fatal("ttl beyond --jwt-max-lifetime issued")
	}
}

// With PostGIS the token command refuses the secrets the origin refuses.
func TestTokenCommandRefusesWeakSecretsForPostGIS(t *testing.T) {
	const url = "postgres://postgres@127.0.0.1:5432/spark?sslmode=disable"
	for _, secret := range []string{"short", origin.DevJWTSecret} {
		if _, err := issueWith(t, "--database-url", url, "--jwt-secret", secret, "--user", "1"); err == nil {
			t.Errorf("secret of %d bytes accepted for PostGIS", len(secret))
		}
	}
	if _, err := issueWith(t, "--database-url", url, "--jwt-secret", strings.Repeat("k", 32), "--user", "1"); err != nil {
		t.Fatal(err)
	}
}
