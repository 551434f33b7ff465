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
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Upstream: "http://127.0.0.1:8081/api/users", StripPrefix: "/img",
		UpstreamTimeout: caddy.Duration(3 * time.Second), MaxSourceBytes: 10_000_000, MaxSourcePixels: 40_000_000,
		MaxSide: 10000, Timeout: caddy.Duration(8 * time.Second), MaxConcurrent: 3, MaxQueue: 32, AVIFEffort: 4,
		CacheControl: "public, max-age=600", NoMeasureRTT: true,
	}
	if got, w := fmt.Sprintf("%+v", h), fmt.Sprintf("%+v", want); got != w {
		t.Fatalf("got  %s\nwant %s", got, w)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUnmarshalCaddyfilePlan(t *testing.T) {
	var a PlanApp
	err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_image_plan {
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
	want := PlanApp{Sizes: []int{150, 300, 600, 1200}, Slow: []int{150, 55}, ThreeG: []int{300, 70}, Fast: []int{1200, 80},
		DefaultClass: "fast", Formats: []string{"webp", "jpeg"}}
	if got, w := fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", want); got != w {
		t.Fatalf("got  %s\nwant %s", got, w)
	}
	if err := provisionPlan(&a); err != nil {
		t.Fatal(err)
	}
	plan := a.Plan()
	if plan.Budgets[2].Width != 1200 || plan.DefaultClass.String() != "fast" || len(plan.Formats) != 2 {
		t.Fatalf("plan %+v", plan)
	}
}

// provisionPlan provisions and validates the plan app, as Caddy loads it.
func provisionPlan(a *PlanApp) error {
	if err := a.Provision(caddy.Context{}); err != nil {
		return err
	}
	return a.Validate()
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
		"spark_image_plan extra",
		"spark_image_plan {\nslow 200\n}",
		"spark_image_plan {\ndefault_class 5g\n}",
		"spark_image_plan {\nformats gif\n}",
		"spark_image_plan {\nsizes big\n}",
		"spark_image_plan {\ncritical_ch\n}",
	} {
		var u caddyfile.Unmarshaler = new(Handler)
		switch {
		case strings.HasPrefix(text, "spark_image_hints"):
			u = new(Hints)
		case strings.HasPrefix(text, "spark_image_plan"):
			u = new(PlanApp)
		}
		if err := u.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text)); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
	for _, h := range []Handler{
		{},                                  // neither root nor upstream
		{Root: "/x", Upstream: "http://h/"}, // both
		{Root: "/x", AVIFEffort: 10},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", h)
		}
	}
	for _, a := range []PlanApp{
		{Fast: []int{1000, 85}}, // budget width not among the sizes
		{Slow: []int{200}},
		{Formats: []string{"webp"}}, // no JPEG
		{DefaultClass: "5g"},
	} {
		if err := provisionPlan(&a); err == nil {
			t.Errorf("the plan %+v accepted", a)
		}
	}
	var hn Hints
	if err := hn.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`spark_image_hints {
		critical_ch
	}`)); err != nil || !hn.CriticalCH {
		t.Fatalf("hints: %+v, %v", hn, err)
	}
}

// A plan option in either handler's block is refused with an error that
// says where the one plan is set.
func TestUnmarshalCaddyfilePlanOptionsMoved(t *testing.T) {
	for _, text := range []string{"spark_image {\nsizes 100 200\n}", "spark_image_hints {\nfast 800 85\n}"} {
		var u caddyfile.Unmarshaler = new(Handler)
		if strings.HasPrefix(text, "spark_image_hints") {
			u = new(Hints)
		}
		err := u.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text))
		if err == nil || !strings.Contains(err.Error(), "global option spark_image_plan") {
			t.Errorf("%q: %v, want an error naming the global option", text, err)
		}
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
