package origin_test

import (
	"strings"
	"testing"

	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// On PostGIS the origin refuses a weak events token (the development one,
// one shorter than 32 bytes), naming the flag and never printing the
// token; the embedded store takes any, and defaults to the development one.
func TestRunPostGISRefusesWeakEventsToken(t *testing.T) {
	pgtest.Open(t, "test_origin_auth")
	base := origin.Config{Listen: "127.0.0.1:0", DatabaseURL: pgtest.SchemaURL(t, "test_origin_auth"), PhotoDir: t.TempDir(),
		JWTSecret: strings.Repeat("j", 32)}
	for name, tok := range map[string]string{
		"development token": origin.DevEventsToken,
		"31 bytes":          strings.Repeat("e", 31),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.Events.Token = tok
			err := runRefused(t, cfg)
			if !strings.Contains(err.Error(), "--events-token") || !strings.Contains(err.Error(), "SPARK_EVENTS_TOKEN") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatalf("error prints the token: %v", err)
			}
		})
	}
	cfg := base
	cfg.Events.Token = strings.Repeat("e", 32)
	startOrigin(t, cfg)

	for _, tc := range []struct {
		token, db   string
		redis       bool
		want        string
		dev, refuse bool
	}{
		{"", "", false, origin.DevEventsToken, true, false}, // embedded default
		{"short", "", false, "short", false, false},         // embedded: any
		{"", "postgres://x", false, "", false, false},       // PostGIS without a token: no stream
		{"", "postgres://x", true, "", false, false},        // Redis: no token needed
		{"short", "postgres://x", true, "", false, false},   // Redis: the token is not used
		{"short", "postgres://x", false, "", false, true},   // weak on PostGIS
		{strings.Repeat("t", 40), "postgres://x", false, strings.Repeat("t", 40), false, false},
	} {
		got, dev, err := origin.ResolveEventsToken(tc.token, tc.db, tc.redis)
		if got != tc.want || dev != tc.dev || (err != nil) != tc.refuse {
			t.Fatalf("ResolveEventsToken(%q, %q, %v) = %q, %v, %v", tc.token, tc.db, tc.redis, got, dev, err)
		}
	}
}
