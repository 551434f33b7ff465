package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	_ "github.com/spark-edge/spark/caddymodule/image"
	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_auth {
		hs256_secret {env.SPARK_JWT_SECRET}
		hs256_secret {file./etc/spark/old.secret} 2026-10
		ed25519_key /etc/spark/ed.pem
		ed25519_key {env.ED_KEY_FILE} ed-2
		rs256_key /etc/spark/rsa.pem rs-1
		issuer https://auth.spark.example
		audience spark-api
		max_lifetime 12h
		leeway 10s
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Handler{Config: tokenconf.Config{
		HS256Secrets: []Secret{{Value: "{env.SPARK_JWT_SECRET}"}, {Value: "{file./etc/spark/old.secret}", KeyID: "2026-10"}},
		Ed25519Keys:  []PublicKey{{File: "/etc/spark/ed.pem"}, {File: "{env.ED_KEY_FILE}", KeyID: "ed-2"}},
		RS256Keys:    []PublicKey{{File: "/etc/spark/rsa.pem", KeyID: "rs-1"}},
		Issuer:       "https://auth.spark.example", Audience: "spark-api",
		MaxLifetime: caddy.Duration(12 * time.Hour), Leeway: caddy.Duration(10 * time.Second),
	}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got  %+v\nwant %+v", h, want)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	// The JSON holds the placeholders as written.
	b, _ := json.Marshal(h)
	if !strings.Contains(string(b), `"value":"{env.SPARK_JWT_SECRET}"`) {
		t.Fatalf("JSON %s", b)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, text := range []string{
		`spark_auth extra`,
		`spark_auth {
			hs256_secret
		}`,
		`spark_auth {
			hs256_secret a b c
		}`,
		`spark_auth {
			ed25519_key
		}`,
		`spark_auth {
			rs256_key a b c
		}`,
		`spark_auth {
			issuer
		}`,
		`spark_auth {
			audience a b
		}`,
		`spark_auth {
			max_lifetime forever
		}`,
		`spark_auth {
			leeway -5s
		}`,
		`spark_auth {
			hs256_secret_file /x
		}`,
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text)); err == nil {
			t.Errorf("accepted:\n%s", text)
		}
	}
	if err := (&Handler{}).Validate(); err == nil {
		t.Error("no keys validated")
	}
	if err := (&Handler{Config: tokenconf.Config{HS256Secrets: []Secret{{Value: "x"}}, MaxLifetime: -1}}).Validate(); err == nil {
		t.Error("negative max_lifetime validated")
	}
}

// spark_auth orders itself before spark_image_hints and spark_cache (and
// request_header), wherever it is written in the site block.
func TestDirectiveOrder(t *testing.T) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	auto_https off
}
http://:8080 {
	spark_cache
	spark_image_hints
	request_header X-A b
	reverse_proxy 127.0.0.1:9
	spark_auth {
		hs256_secret {env.SPARK_JWT_SECRET}
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	order := []string{`"handler":"spark_auth"`, `"handler":"headers"`, `"handler":"spark_image_hints"`, `"handler":"spark_cache"`, `"handler":"reverse_proxy"`}
	last := -1
	for _, h := range order {
		i := strings.Index(s, h)
		if i < 0 || i < last {
			t.Fatalf("%s not in order %v:\n%s", h, order, s)
		}
		last = i
	}
}

// FuzzUnmarshalCaddyfile: any directive text is refused or gives a handler
// with no negative duration and no key without a file.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{"hs256_secret {env.X}", "hs256_secret a b\nleeway 5s", "ed25519_key /k.pem k1\nrs256_key /r.pem",
		"max_lifetime 1h\nissuer i\naudience a", "leeway -1s", "max_lifetime 1e9h", "rs256_key", `hs256_secret "a b" "c"`, "x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		tokens, err := caddyfile.Tokenize([]byte("spark_auth {\n"+body+"\n}"), "Caddyfile")
		if err != nil {
			return // not Caddyfile syntax at all
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if h.MaxLifetime < 0 || h.Leeway < 0 {
			t.Fatalf("negative duration from %q: %+v", body, h)
		}
		for _, k := range append(h.Ed25519Keys, h.RS256Keys...) {
			if k.File == "" && h.Validate() == nil {
				t.Fatalf("key without a file validated from %q", body)
			}
		}
	})
}
