package deck

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser(`spark_deck_hints {
		photos 3
		warm_concurrency 4
		warm_queue 32
		warm_timeout 5s
		profiles 40
		next_page
		viewer_concurrency 3
		viewer_queue 120
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{Photos: 3, WarmConcurrency: 4, WarmQueue: 32, WarmTimeout: caddy.Duration(5 * time.Second)}
	if h.Photos != want.Photos || h.WarmConcurrency != want.WarmConcurrency || h.WarmQueue != want.WarmQueue || h.WarmTimeout != want.WarmTimeout ||
		h.Profiles != 40 || !h.NextPage || h.ViewerConcurrency != 3 || h.ViewerQueue != 120 {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	var n Handler
	if err := n.UnmarshalCaddyfile(caddyfile.NewTestDispenser("spark_deck_hints {\nno_warm\n}")); err != nil || !n.NoWarm {
		t.Errorf("no_warm: %+v %v", n, err)
	}
	n.setDefaults()
	if n.Photos != DefaultPhotos || n.WarmQueue != DefaultWarmQueue || n.Profiles != 0 || n.NextPage || n.ViewerQueue != DefaultViewerQueue || n.Validate() != nil {
		t.Errorf("defaults: %+v", n)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, in := range []string{
		`spark_deck_hints extra`,
		"spark_deck_hints {\nphotos 0\n}",
		"spark_deck_hints {\nphotos 11\n}",
		"spark_deck_hints {\nphotos x\n}",
		"spark_deck_hints {\nno_warm yes\n}",
		"spark_deck_hints {\nwarm_timeout -1s\n}",
		"spark_deck_hints {\nprefetch 3\n}",
		"spark_deck_hints {\nprofiles 0\n}",
		"spark_deck_hints {\nnext_page 2\n}",
		"spark_deck_hints {\nprofiles 101\n}",
		"spark_deck_hints {\nviewer_queue\n}",
		"spark_deck_hints {\nviewer_concurrency 0\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
	h := Handler{Photos: 3, WarmConcurrency: 4, WarmQueue: 2, WarmTimeout: caddy.Duration(time.Second)}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "warm_queue") {
		t.Errorf("queue below concurrency: %v", err)
	}
	h = Handler{Photos: 3, WarmConcurrency: 1, WarmQueue: 2, WarmTimeout: caddy.Duration(time.Second),
		Profiles: 10, ViewerConcurrency: 4, ViewerQueue: 3}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "viewer_queue") {
		t.Errorf("profile queue below its concurrency: %v", err)
	}
}
