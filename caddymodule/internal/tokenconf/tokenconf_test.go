package tokenconf

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

func TestUnmarshalOption(t *testing.T) {
	d := caddyfile.NewTestDispenser(`x {
		hs256_secret {env.S} k1
		rs256_key /k.pem
		issuer iss
		leeway 5s
		other 1
	}`)
	d.Next()
	var c Config
	var unknown []string
	for d.NextBlock(0) {
		ok, err := c.UnmarshalOption(d)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			unknown = append(unknown, d.Val())
			d.RemainingArgs()
		}
	}
	if len(c.HS256Secrets) != 1 || c.HS256Secrets[0].KeyID != "k1" || len(c.RS256Keys) != 1 || c.Issuer != "iss" || c.Leeway != caddy.Duration(5e9) {
		t.Fatalf("%+v", c)
	}
	if len(unknown) != 1 || unknown[0] != "other" {
		t.Fatalf("unknown options %v", unknown)
	}
	if err := c.Validate("m"); err != nil {
		t.Fatal(err)
	}
	if err := (&Config{}).Validate("m"); err == nil || !strings.HasPrefix(err.Error(), "m: ") {
		t.Fatalf("empty config: %v", err)
	}
}

func TestVerifierNeverEchoesASecret(t *testing.T) {
	const short = "a-short-literal-secret"
	c := Config{HS256Secrets: []Secret{{Value: short}}}
	_, err := c.Verifier(caddy.NewReplacer(), zap.NewNop(), "m")
	if err == nil || strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "m: hs256_secret 1") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("TOKENCONF_TEST_SECRET", "tokenconf-test-secret-0123456789abcdef")
	c = Config{HS256Secrets: []Secret{{Value: "{env.TOKENCONF_TEST_SECRET}"}}}
	if _, err := c.Verifier(caddy.NewReplacer(), zap.NewNop(), "m"); err != nil {
		t.Fatal(err)
	}
}
