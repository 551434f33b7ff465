package image

// The modules inside a real Caddy: the plan both handlers share, refusals
// handed to handle_errors, the variant placeholder, Cleanup. Caddy is
// process-global: these tests do not run in parallel.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// planSite renders a site with both handlers (no cache between them), the
// global options given, and handle_errors when errorsRoute is set. The
// response carries the variant placeholder in X-Chosen-Variant (a deferred
// header: evaluated once the handlers ran).
func planSite(ports []int, originURL, globals string, errorsRoute bool) string {
	errs := ""
	if errorsRoute {
		errs = `	handle_errors {
		respond "handled {err.status_code} for {http.spark_image.variant}: {err.message}"
	}
`
	}
	return testSite(ports, globals, `	header >X-Chosen-Variant {http.spark_image.variant}
	spark_image_hints
	spark_image /photos/* {
		upstream `+originURL+`/api/photos
		strip_prefix /photos
	}
`+errs)
}

// The plan is one definition, the global option spark_image_plan: the
// variant spark_image_hints chooses is one spark_image makes, and a reload
// that changes the plan reaches both. (Were spark_image still on the old
// plan, it would refuse the header's w1200-q80 and choose w800-q85 itself.)
func TestSharedPlanReachesBothHandlersOnReload(t *testing.T) {
	o := newPhotoOrigin(t)
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string { return planSite(ports, o.srv.URL, "", false) })
	photo := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/photos/wine-gps-2560x3837.jpg"

	r := edgeGet(t, photo, "ECT", "4g")
	if r.code != 200 || r.variant() != "w800-q85-jpeg" || r.header.Get("X-Chosen-Variant") != "w800-q85-jpeg" {
		t.Fatalf("default plan: %d, variant %q, placeholder %q", r.code, r.variant(), r.header.Get("X-Chosen-Variant"))
	}

	caddytest.Reload(t, planSite(ports, o.srv.URL, `	spark_image_plan {
		sizes 200 400 800 1200
		fast 1200 80
	}
`, false))
	r = edgeGet(t, photo, "ECT", "4g")
	if r.code != 200 || r.variant() != "w1200-q80-jpeg" || r.header.Get("X-Chosen-Variant") != "w1200-q80-jpeg" {
		t.Fatalf("reloaded plan: %d, variant %q, placeholder %q; want w1200-q80-jpeg", r.code, r.variant(), r.header.Get("X-Chosen-Variant"))
	}
	if v := r.header.Get("Vary"); strings.Contains(v, contract.ImageVariant) || !strings.Contains(v, "ECT") {
		t.Errorf("Vary %q: want the hint fields", v)
	}
}

// A plan that does not hold together stops the config from loading, and
// the error names the app.
func TestSharedPlanInvalidRefused(t *testing.T) {
	o := newPhotoOrigin(t)
	// Port 0: nothing binds, the config must not get that far.
	err := caddytest.TryLoad(t, planSite([]int{0, 0}, o.srv.URL, `	spark_image_plan {
		fast 1000 85
	}
`, false))
	if err == nil {
		caddy.Stop()
		t.Fatal("a fast width outside the sizes was accepted")
	}
	if !strings.Contains(err.Error(), PlanAppID) {
		t.Errorf("error %v does not name %s", err, PlanAppID)
	}
}

// With handle_errors on the server, spark_image's refusals reach it as
// errors (status, message, the variant placeholder) with the no-store
// headers already set.
func TestRefusalsReachHandleErrors(t *testing.T) {
	o := newPhotoOrigin(t)
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string { return planSite(ports, o.srv.URL, "", true) })
	site := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	for path, want := range map[string]int{
		"/photos/missing.jpg":   404,
		"/photos/truncated.jpg": 422,
		"/photos/":              400,
	} {
		r := edgeGet(t, site+path, "ECT", "4g")
		body := string(r.body)
		if r.code != want || !strings.HasPrefix(body, "handled "+strconv.Itoa(want)+" for ") || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %q (Cache-Control %q), want handle_errors' %d", path, r.code, body, r.header.Get("Cache-Control"), want)
		}
		if path != "/photos/" && !strings.HasPrefix(body, "handled "+strconv.Itoa(want)+" for w800-q85-jpeg: ") {
			t.Errorf("%s: %q lacks the chosen variant", path, body)
		}
	}
	res, err := caddytest.Exchange(strings.TrimPrefix(site, "http://"), "POST", "/photos/x.jpg", "x")
	if err != nil || res.Status != 405 || res.Header.Get("Allow") != "GET, HEAD" || !strings.HasPrefix(res.Body, "handled 405") {
		t.Errorf("POST: %+v, %v", res, err)
	}
}

// Cleanup returns at once while a transform of the handler's processor is
// still running; the transform finishes all the same.
func TestCleanupDoesNotWaitForTransforms(t *testing.T) {
	h := &Handler{Root: photoDir(t), MaxConcurrent: 1}
	if _, err := h.openUpstream(); err != nil {
		t.Fatal(err)
	}
	proc, err := h.takeProcessor()
	if err != nil {
		t.Fatal(err)
	}
	src := readPhoto(t, "dandelions-5312x2988.jpg")
	done := make(chan error, 1)
	go func() {
		_, err := proc.Transform(context.Background(), src, imageproxy.Variant{Width: 800, Quality: 85, Format: imageproxy.FormatWebP})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // most likely in libvips by now
	start := time.Now()
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Cleanup took %v", d)
	}
	if err := <-done; err != nil {
		t.Fatalf("the transform in flight: %v", err)
	}
}
