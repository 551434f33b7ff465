package image

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileHandler(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_image {
		upstream http://127.0.0.1:8081/api/users
		strip_prefix /img
		upstream_timeout 3s
		max_source_bytes 10MB
		max_source_pixels 40000000
		max_side 10000
		timeout 8s
		max_concurrent 3
		max_queue 32
		avif_effort 4
		cache_control "public, max-age=600"
		measure_rtt off
		sizes 150 300 600 1200
		slow 150 55
		3g 300 70
		fast 1200 80
		default_class fast
		formats webp jpeg
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Upstream: "http://127.0.0.1:8081/api/users", StripPrefix: "/img",
		UpstreamTimeout: caddy.Duration(3 * time.Second), MaxSourceBytes: 10_000_000, MaxSourcePixels: 40_000_000,
		MaxSide: 10000, Timeout: caddy.Duration(8 * time.Second), MaxConcurrent: 3, MaxQueue: 32, AVIFEffort: 4,
		CacheControl: "public, max-age=600", NoMeasureRTT: true,
		Plan: PlanConfig{Sizes: []int{150, 300, 600, 1200}, Slow: []int{150, 55}, ThreeG: []int{300, 70}, Fast: []int{1200, 80},
			DefaultClass: "fast", Formats: []string{"webp", "jpeg"}},
	}
	if got, w := fmt.Sprintf("%+v", h), fmt.Sprintf("%+v", want); got != w {
		t.Fatalf("got  %s\nwant %s", got, w)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	plan, err := h.Plan.Build()
	if err != nil || plan.Budgets[2].Width != 1200 || plan.DefaultClass.String() != "fast" || len(plan.Formats) != 2 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, text := range []string{
		`spark_image extra`,
		"spark_image {\nroot\n}",
		"spark_image {\ntimeout soon\n}",
		"spark_image {\nmax_source_bytes lots\n}",
		"spark_image {\nmax_queue -1\n}",
		"spark_image {\nslow 200\n}",
		"spark_image {\ndefault_class 5g\n}",
		"spark_image {\nformats gif\n}",
		"spark_image {\nnonsense 1\n}",
		"spark_image_hints {\nmeasure_rtt maybe\n}",
		"spark_image_hints {\nsizes big\n}",
	} {
		var err error
		if strings.HasPrefix(text, "spark_image_hints") {
			var h Hints
			err = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text))
		} else {
			var h Handler
			err = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text))
		}
		if err == nil {
			t.Errorf("%q accepted", text)
		}
	}
	for _, h := range []Handler{
		{},                                  // neither root nor upstream
		{Root: "/x", Upstream: "http://h/"}, // both
		{Root: "/x", Plan: PlanConfig{Fast: []int{1000, 85}}}, // budget width not among the sizes
		{Root: "/x", AVIFEffort: 10},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", h)
		}
	}
	var hn Hints
	if err := hn.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_image_hints {
		critical_ch
		default_class slow
	}`)); err != nil || !hn.CriticalCH || hn.Plan.DefaultClass != "slow" {
		t.Fatalf("hints: %+v, %v", hn, err)
	}
}

// Durations take bare seconds like spark_cache's, and a huge one is refused
// with an error saying so instead of being accepted (or wrapped).
func TestUnmarshalCaddyfileDurationBounds(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("spark_image {\ntimeout 30\nupstream_timeout 1m\n}")); err != nil ||
		h.Timeout != caddy.Duration(30*time.Second) || h.UpstreamTimeout != caddy.Duration(time.Minute) {
		t.Errorf("timeouts %v %v, %v", h.Timeout, h.UpstreamTimeout, err)
	}
	for _, opt := range []string{"timeout 1000000h", "timeout 20000000000", "upstream_timeout 106752d", "upstream_timeout 1000000000h"} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("spark_image {\n" + opt + "\n}"))
		if err == nil || !strings.Contains(err.Error(), "longer than the maximum") {
			t.Errorf("%q: %v (timeouts %v %v), want an error saying it is too long", opt, err, h.Timeout, h.UpstreamTimeout)
		}
	}
	for _, opt := range []string{"timeout 0", "timeout -1s", "upstream_timeout 0s"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("spark_image {\n" + opt + "\n}")); err == nil {
			t.Errorf("%q accepted", opt)
		}
	}
}
