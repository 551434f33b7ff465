package batch

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`spark_batch {
		max_requests 20
		max_body_size 32KiB
		max_batch_size 2MiB
		max_response_size 512KiB
		methods get HEAD POST
		path_prefixes /api/ /v2/
		concurrency 6
		timeout 3s
		streaming
		response_headers etag Cache-Status
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{MaxRequests: 20, MaxBodySize: 32 << 10, MaxBatchSize: 2 << 20, MaxResponseSize: 512 << 10,
		Methods: []string{"GET", "HEAD", "POST"}, PathPrefixes: []string{"/api/", "/v2/"}, Concurrency: 6,
		Timeout: caddy.Duration(3 * time.Second), Streaming: true, ResponseHeaders: []string{"etag", "Cache-Status"}}
	got, _ := json.Marshal(h)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("got  %s\nwant %s", got, exp)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
}

// Defaults: 10 sub-requests, 64 KiB bodies, 1 MiB batches and responses,
// the six methods, /api/, 4 at once, 10 s.
func TestDefaults(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_batch`)); err != nil {
		t.Fatal(err)
	}
	h.setDefaults()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if h.MaxRequests != 10 || h.MaxBodySize != 64<<10 || h.MaxBatchSize != 1<<20 || h.MaxResponseSize != 1<<20 ||
		len(h.methods) != 6 || h.PathPrefixes[0] != "/api/" || h.Concurrency != 4 || time.Duration(h.Timeout) != 10*time.Second || h.Streaming ||
		!slices.Equal(h.ResponseHeaders, DefaultResponseHeaders) {
		t.Errorf("%+v", h)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		`spark_batch arg`:                             "wrong argument count",
		`spark_batch { bogus }`:                       "unknown spark_batch option",
		`spark_batch { max_requests 0 }`:              "at least 1",
		`spark_batch { max_requests }`:                "wrong argument count",
		`spark_batch { max_body_size lots }`:          "want a size",
		`spark_batch { methods TRACE }`:               `"TRACE" is not one of`,
		`spark_batch { methods }`:                     "wrong argument count",
		`spark_batch { path_prefixes api/ }`:          "must start with /",
		`spark_batch { concurrency -1 }`:              "at least 1",
		`spark_batch { timeout 10m }`:                 "want a duration",
		`spark_batch { timeout soon }`:                "timeout",
		`spark_batch { streaming yes }`:               "wrong argument count",
		`spark_batch { response_headers }`:            "wrong argument count",
		`spark_batch { response_headers Set-Cookie }`: "Set-Cookie is never kept",
		`spark_batch { response_headers a:b }`:        `"a:b" is not a field name`,
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(strings.NewReplacer("{ ", "{\n", " }", "\n}").Replace(in)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, h := range []Handler{
		{MaxRequests: 101},
		{MaxBodySize: 2 << 20, MaxBatchSize: 1 << 20},
		{Methods: []string{"OPTIONS"}},
		{PathPrefixes: []string{"api"}},
		{Timeout: caddy.Duration(time.Hour)},
		{ResponseHeaders: []string{"Content-Length"}},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%+v: valid", h)
		}
	}
}

// The directive adapts inside a route, ordered before spark_auth.
func TestAdaptOrder(t *testing.T) {
	cfg := string(caddytest.Adapt(t, `http://:8080 {
	spark_auth {
		hs256_secret 0123456789abcdef0123456789abcdef
	}
	spark_batch /api/batch {
		max_requests 5
	}
	respond ok
}`))
	b, a := strings.Index(cfg, `"handler":"spark_batch"`), strings.Index(cfg, `"handler":"spark_auth"`)
	if b < 0 || a < 0 || b > a {
		t.Errorf("spark_batch at %d, spark_auth at %d:\n%s", b, a, cfg)
	}
	if !strings.Contains(cfg, `"max_requests":5`) {
		t.Errorf("options lost: %s", cfg)
	}
}
