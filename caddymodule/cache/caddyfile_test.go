package cache

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
	"github.com/spark-edge/spark/caddymodule/internal/redisconf"
)

func unmarshalCache(t *testing.T, text string) (*Handler, error) {
	t.Helper()
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text))
	return &h, err
}

func TestUnmarshalCaddyfileDurations(t *testing.T) {
	h, err := unmarshalCache(t, `spark_cache {
		ttl 300
		stale_while_revalidate 1m
		stale_if_error 2147483648
		rule /a/* {
			ttl 30d
		}
		redis 127.0.0.1:6379 {
			dial_timeout 2
			read_timeout 250ms
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if h.Defaults.TTL != caddy.Duration(300*time.Second) || *h.Defaults.StaleWhileRevalidate != caddy.Duration(time.Minute) ||
		*h.Defaults.StaleIfError != caddy.Duration(duration.Max) || h.Rules[0].TTL != caddy.Duration(30*24*time.Hour) ||
		h.Redis.DialTimeout != caddy.Duration(2*time.Second) || h.Redis.ReadTimeout != caddy.Duration(250*time.Millisecond) {
		t.Fatalf("parsed %+v, redis %+v", h.Defaults, h.Redis)
	}
}

// A huge duration is refused with an error saying so, in every option that
// takes one. Bare seconds used to be multiplied by 1e9 unchecked:
// "ttl 20000000000" wrapped to a TTL of about 18 days.
func TestUnmarshalCaddyfileRefusesHugeDurations(t *testing.T) {
	for _, opt := range []string{
		"ttl 20000000000", "ttl 1000000000h", "ttl 2147483649",
		"stale_while_revalidate 20000000000", "stale_if_error 106752d",
		"rule /a/* {\nttl 20000000000\n}",
		"redis 127.0.0.1:6379 {\ndial_timeout 20000000000\n}",
		"redis 127.0.0.1:6379 {\nread_timeout 1000000000h\n}",
	} {
		h, err := unmarshalCache(t, "spark_cache {\n"+opt+"\n}")
		if err == nil {
			t.Errorf("%q accepted: defaults %+v rules %+v", opt, h.Defaults, h.Rules)
			continue
		}
		if !strings.Contains(err.Error(), "longer than the maximum") {
			t.Errorf("%q: error %q does not say the duration is too long", opt, err)
		}
	}
	for _, opt := range []string{"ttl -5m", "ttl soon", "ttl 1.5", "stale_if_error"} {
		if _, err := unmarshalCache(t, "spark_cache {\n"+opt+"\n}"); err == nil {
			t.Errorf("%q accepted", opt)
		}
	}
}

// A JSON config is held to the same bound as the Caddyfile.
func TestValidateRefusesHugeDurations(t *testing.T) {
	huge := caddy.Duration(duration.Max + time.Second)
	for _, h := range []Handler{
		{Defaults: Policy{TTL: huge}},
		{Defaults: Policy{StaleWhileRevalidate: &huge}},
		{Rules: []Rule{{Path: "/a", Policy: Policy{StaleIfError: &huge}}}},
		{Redis: &RedisConfig{Config: redisconf.Config{Addresses: []string{"127.0.0.1:6379"}, WriteTimeout: huge}}},
	} {
		h.Capacity, h.MaxEntrySize = DefaultCapacity, DefaultMaxEntrySize
		if err := h.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", h)
		}
	}
	ok := caddy.Duration(duration.Max)
	h := Handler{Capacity: DefaultCapacity, MaxEntrySize: DefaultMaxEntrySize, Defaults: Policy{TTL: ok, StaleIfError: &ok}}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate refused the maximum: %v", err)
	}
}

// Secrets written as runtime placeholders stay placeholders in the config;
// only Provision reads them.
func TestUnmarshalCaddyfileKeepsSecretPlaceholders(t *testing.T) {
	h, err := unmarshalCache(t, `spark_cache {
		purge_token {env.SPARK_PURGE_TOKEN}
		redis 127.0.0.1:6379 {
			username {env.SPARK_REDIS_USER}
			password {file./etc/spark/redis-password}
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if h.PurgeToken != "{env.SPARK_PURGE_TOKEN}" || h.Redis.Username != "{env.SPARK_REDIS_USER}" ||
		h.Redis.Password != "{file./etc/spark/redis-password}" {
		t.Fatalf("placeholders not kept: token %q, redis %+v", h.PurgeToken, h.Redis)
	}
}

func TestResolveSecret(t *testing.T) {
	t.Setenv("SPARK_TEST_SECRET", "s3cr3t")
	t.Setenv("SPARK_TEST_EMPTY", "")
	dir := t.TempDir()
	file := dir + "/secret"
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, want string
		notEmpty bool
		fails    bool
	}{
		{in: "literal", want: "literal"},
		{in: "{env.SPARK_TEST_SECRET}", want: "s3cr3t"},
		{in: "{file." + file + "}", want: "from-a-file"},
		{in: "{env.SPARK_TEST_EMPTY}", want: ""},
		{in: "{env.SPARK_TEST_EMPTY}", notEmpty: true, fails: true},
		{in: "{file." + dir + "/missing}", notEmpty: true, fails: true},
		{in: "{envv.SPARK_TEST_SECRET}", fails: true}, // a typo never becomes the secret
		{in: `a\{b}`, want: "a{b}"},
	} {
		got, err := resolveSecret(c.in, c.notEmpty)
		if c.fails {
			if err == nil {
				t.Errorf("resolveSecret(%q, %v) = %q, want an error", c.in, c.notEmpty, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("resolveSecret(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestUnmarshalCaddyfilePurgeHandler(t *testing.T) {
	for text, want := range map[string]string{
		"spark_purge":                        "",
		"spark_purge {\n\tcache edge-a\n}":   "edge-a",
		"spark_purge {\n\tcache  edge-b \n}": "edge-b",
	} {
		var p PurgeHandler
		if err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text)); err != nil || p.Cache != want {
			t.Errorf("%q: cache %q, %v; want %q", text, p.Cache, err, want)
		}
	}
	for _, text := range []string{"spark_purge extra", "spark_purge {\n\tcache\n}", "spark_purge {\n\tcache a b\n}", "spark_purge {\n\ttoken x\n}"} {
		var p PurgeHandler
		if err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text)); err == nil {
			t.Errorf("%q accepted: %+v", text, p)
		}
	}
}

// A rule selects its requests with Caddy's matchers: `rule <pattern>` is
// one path matcher, `rule { match { … } }` any matcher set (several match
// blocks: any one selects).
func TestUnmarshalCaddyfileRules(t *testing.T) {
	h, err := unmarshalCache(t, `spark_cache {
		rule /api/users/*/profile {
			ttl 5m
		}
		rule {
			match {
				method GET
				header Save-Data on
			}
			match {
				path /lite/*
			}
			ttl 1m
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Rules) != 2 {
		t.Fatalf("rules %+v", h.Rules)
	}
	got, _ := json.Marshal(h.Rules[0].MatcherSetsRaw)
	if string(got) != `[{"path":["/api/users/*/profile"]}]` || h.Rules[0].TTL != caddy.Duration(5*time.Minute) {
		t.Errorf("rule <pattern>: match %s, policy %+v", got, h.Rules[0].Policy)
	}
	got, _ = json.Marshal(h.Rules[1].MatcherSetsRaw)
	if string(got) != `[{"header":{"Save-Data":["on"]},"method":["GET"]},{"path":["/lite/*"]}]` || h.Rules[1].TTL != caddy.Duration(time.Minute) {
		t.Errorf("rule with match blocks: match %s, policy %+v", got, h.Rules[1].Policy)
	}
	for _, bad := range []string{
		"rule {\nttl 1m\n}",
		"rule /a {\nmatch {\nmethod GET\n}\n}",
		"rule static/* {\nttl 1m\n}",
		"rule /bad[ {\nttl 1m\n}",
		"rule /a /b {\nttl 1m\n}",
		"rule {\nmatch {\nno_such_matcher x\n}\n}",
	} {
		if _, err := unmarshalCache(t, "spark_cache {\n"+bad+"\n}"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// identity takes one {http.auth.*} placeholder, kept as written; anything
// a client could set, or no placeholder, is refused with a clear error.
func TestIdentityOption(t *testing.T) {
	h, err := unmarshalCache(t, `spark_cache {
		identity {http.auth.user.id}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	h.Capacity, h.MaxEntrySize = DefaultCapacity, DefaultMaxEntrySize
	if h.Identity != "{http.auth.user.id}" || h.Validate() != nil || identityPlaceholder(h.Identity) != "http.auth.user.id" {
		t.Fatalf("identity %q: validate %v", h.Identity, h.Validate())
	}
	for _, bad := range []string{"{http.request.header.X-User}", "http.auth.user.id", "{http.auth.}", "{http.auth.user.id}{x}", "{http.auth.user.id} x", "user"} {
		h := Handler{Capacity: DefaultCapacity, MaxEntrySize: DefaultMaxEntrySize, Identity: bad}
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "identity") {
			t.Errorf("identity %q: Validate said %v, want an identity error", bad, err)
		}
	}
	if _, err := unmarshalCache(t, `spark_cache {
		identity
	}`); err == nil {
		t.Error("identity without a placeholder was accepted")
	}
}
