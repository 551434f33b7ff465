package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/fastreq"
)

// TestFastPathCaddyfile: the options, and the mistakes refused.
func TestFastPathCaddyfile(t *testing.T) {
	var fp FastPath
	d := caddyfile.NewTestDispenser("spark_fastpath {\n cache edge\n paths /static/* /p\n paths /q/*\n idle_timeout 2m\n take_back off\n}")
	if err := fp.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if fp.Cache != "edge" || strings.Join(fp.Paths, " ") != "/static/* /p /q/*" || time.Duration(fp.IdleTimeout) != 2*time.Minute || !fp.DisableTakeBack {
		t.Fatalf("parsed %+v", fp)
	}
	if err := fp.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"spark_fastpath arg",
		"spark_fastpath {\n nope\n}",
		"spark_fastpath {\n paths\n}",
		"spark_fastpath {\n cache a b\n}",
		"spark_fastpath {\n idle_timeout -1s\n}",
		"spark_fastpath {\n take_back maybe\n}",
		"spark_fastpath {\n take_back\n}",
	} {
		var fp FastPath
		if err := fp.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for _, paths := range [][]string{nil, {"static/*"}, {"/a*b"}} {
		fp := FastPath{Paths: paths, IdleTimeout: caddy.Duration(time.Minute)}
		if err := fp.Validate(); err == nil {
			t.Errorf("paths %q: no error", paths)
		}
	}
}

// TestEncodingVariantKey: the fast path's variant key is the handler's.
func TestEncodingVariantKey(t *testing.T) {
	enc := []string{"zstd", "br", "gzip"}
	for _, ae := range []string{"", "gzip", "br;q=0, *", "identity", "GZIP, zstd;q=0.5"} {
		h := http.Header{}
		var req fastreq.Request
		if ae != "" {
			h.Set("Accept-Encoding", ae)
			req.AcceptEncoding, req.HasAcceptEncoding = []byte(ae), true
		}
		want := secondaryKey("/p\x00host", h, []string{"accept-encoding"}, "", enc)
		if got := string(appendEncodingVariantKey([]byte("/p\x00host"), &req, enc)); got != want {
			t.Errorf("Accept-Encoding %q: key %q, handler's %q", ae, got, want)
		}
	}
}
