package realtime

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/tokenconf"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_realtime {
		origin http://127.0.0.1:8081
		hs256_secret {env.SPARK_JWT_SECRET}
		allowed_origins https://app.spark.example https://www.spark.example
		events origin {env.SPARK_EVENTS_TOKEN}
		queue 500 512KiB
		ping 20s 5s
		write_timeout 3s
		max_frame 32KiB
		rate 10 30
		origin_timeout 4s
		admission_timeout 2s
		in_flight 4 100
		name chat
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.Origin != "http://127.0.0.1:8081" || len(h.HS256Secrets) != 1 || len(h.AllowedOrigins) != 2 ||
		h.QueueFrames != 500 || h.QueueBytes != 512<<10 || h.PingInterval != caddy.Duration(20*time.Second) ||
		h.PongTimeout != caddy.Duration(5*time.Second) || h.WriteTimeout != caddy.Duration(3*time.Second) ||
		h.MaxFrame != 32<<10 || h.Rate != 10 || h.Burst != 30 || h.OriginTimeout != caddy.Duration(4*time.Second) ||
		h.AdmissionTimeout != caddy.Duration(2*time.Second) || h.InFlight != 4 || h.InFlightPerEdge != 100 || h.Name != "chat" {
		t.Fatalf("%+v", h)
	}
	var ev map[string]any
	if err := json.Unmarshal(h.EventsRaw, &ev); err != nil || ev["source"] != "origin" || ev["token"] != "{env.SPARK_EVENTS_TOKEN}" || ev["url"] != "http://127.0.0.1:8081" {
		t.Fatalf("events %s", h.EventsRaw)
	}

	var r Handler
	err = r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_realtime {
		origin http://o
		hs256_secret x
		events redis 127.0.0.1:6379 {
			cluster
			password {env.REDIS_PASSWORD}
			key_prefix sp:
			db 2
			dial_timeout 2s
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	var re RedisEvents
	if err := json.Unmarshal(r.EventsRaw, &re); err != nil || len(re.Addresses) != 1 || !re.Cluster || re.Password != "{env.REDIS_PASSWORD}" ||
		re.KeyPrefix != "sp:" || re.DB != 2 || re.DialTimeout != caddy.Duration(2*time.Second) {
		t.Fatalf("redis events %s %+v", r.EventsRaw, re)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, opt := range []string{
		"queue", "queue 0", "queue 10 1MiB 3", "queue 10 lots", "ping", "ping 0s", "ping 1s 2s 3s",
		"write_timeout -1s", "max_frame", "rate 0", "rate x", "rate 10 0", "in_flight 0", "nope 1",
		"events", "events carrier-pigeon", "events origin", "events origin a b c", "events redis",
		"events redis a {\n nope\n}", "origin", "origin a b", "allowed_origins",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("spark_realtime {\n" + opt + "\n}")); err == nil {
			t.Errorf("%q: no error", opt)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() Handler {
		h := Handler{Origin: "http://o"}
		h.HS256Secrets = []tokenconf.Secret{{Value: "x"}}
		h.fillDefaults()
		return h
	}
	if h := good(); h.Validate() != nil {
		t.Fatal(h.Validate())
	}
	for name, mutate := range map[string]func(*Handler){
		"no origin":     func(h *Handler) { h.Origin = "" },
		"no key":        func(h *Handler) { h.HS256Secrets = nil },
		"tiny queue":    func(h *Handler) { h.QueueBytes = 10 },
		"tiny frame":    func(h *Handler) { h.MaxFrame = 10 },
		"negative rate": func(h *Handler) { h.Rate = -1 },
	} {
		h := good()
		mutate(&h)
		if err := h.Validate(); err == nil || !strings.HasPrefix(err.Error(), "spark_realtime: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, u := range []string{"127.0.0.1:8081", "ftp://o", "http://o?x=1", "http://"} {
		if _, err := checkOriginURL(u); err == nil {
			t.Errorf("origin %q accepted", u)
		}
	}
}
