package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/origin"
)

// tokenCommand returns `token` under a parent carrying the persistent flags
// the origin command gives it.
func tokenCommand() *cobra.Command {
	parent := &cobra.Command{Use: "origin"}
	parent.PersistentFlags().String("database-url", "", "")
	parent.PersistentFlags().String("jwt-secret", "", "")
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
