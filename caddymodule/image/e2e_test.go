package image

// End to end: a real Caddy loaded from a Caddyfile, with spark_image_hints,
// spark_cache and spark_image in their registered order (no `order`
// lines), in front of an origin serving the shared photos. Caddy is
// process-global: these tests do not run in parallel.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/spark-edge/spark/caddymodule/cache"
	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testutil"
)

type photoOrigin struct {
	srv *httptest.Server
	testutil.PathLog
}

func newPhotoOrigin(t *testing.T) *photoOrigin {
	t.Helper()
	dir := photoDir(t)
	wine := readPhoto(t, "wine-gps-2560x3837.jpg")
	o := &photoOrigin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.Record(r.URL.Path)
		name, ok := strings.CutPrefix(r.URL.Path, "/api/photos/")
		switch {
		case !ok:
			http.NotFound(w, r)
		case name == "truncated.jpg":
			w.Write(wine[:len(wine)/3])
		default:
			b, err := os.ReadFile(filepath.Join(dir, filepath.Base(name)))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		}
	}))
	t.Cleanup(o.srv.Close)
	return o
}

type edgeResp struct {
	code   int
	header http.Header
	body   []byte
}

func (r edgeResp) hit() bool       { return strings.Contains(r.header.Get("Cache-Status"), "hit") }
func (r edgeResp) variant() string { return r.header.Get(contract.ImageVariant) }

const e2ePurgeToken = "image-e2e-token"

// imageEdge is a running test edge.
type imageEdge struct {
	site, admin string
	origin      *photoOrigin
	evil        *httptest.Server // a host requests name, which must never be fetched
	evilHits    *int64
}

func startImageEdge(t *testing.T) imageEdge {
	t.Helper()
	o := newPhotoOrigin(t)
	var n int64
	var mu sync.Mutex
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Write(readPhoto(t, "portrait-hopper-512x600.jpg"))
	}))
	t.Cleanup(evil.Close)
	ports := caddytest.LoadOnFreePorts(t, 2, func(ports []int) string {
		return testSite(ports, "\tgrace_period 2s\n", `	spark_image_hints
	spark_cache {
		capacity 16MiB
		max_entry_size 1MiB
		purge_token `+e2ePurgeToken+`
		# The variant header carries w, q and fit: one entry per variant.
		rule /photos/* {
			ignore_query w q fit
		}
	}
	spark_image /photos/* {
		upstream `+o.srv.URL+`/api/photos
		strip_prefix /photos
		timeout 30s
	}
	respond 404
`)
	})
	return imageEdge{
		site:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		admin:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		origin: o, evil: evil, evilHits: &n,
	}
}

// purgeTags purges through the admin API and returns how many entries went.
func (e imageEdge) purgeTags(t *testing.T, tags ...string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"tags": tags})
	req, _ := http.NewRequest("POST", e.admin+"/spark_cache/purge", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2ePurgeToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Removed int }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge: %d, %v", resp.StatusCode, err)
	}
	return out.Removed
}

func edgeGet(t *testing.T, url string, hdr ...string) edgeResp {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A fresh connection per request: the RTT fallback is per connection.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	// Right after a reload a connection may land in the old listener's
	// queue as it closes and be reset (SO_REUSEPORT; README "spark reload
	// under load"): a GET is retried then, as a client would.
	for try := 0; err != nil && errors.Is(err, syscall.ECONNRESET) && try < 5; try++ {
		time.Sleep(100 * time.Millisecond)
		resp, err = c.Do(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return edgeResp{resp.StatusCode, resp.Header, b}
}

func TestEndToEndVariantsThroughSparkCache(t *testing.T) {
	e := startImageEdge(t)
	site, o := e.site, e.origin
	photo := site + "/photos/wine-gps-2560x3837.jpg"
	webp := "image/avif;q=0, image/webp,*/*;q=0.8"

	first := edgeGet(t, photo, "ECT", "4g", "Accept", webp)
	if first.code != 200 || first.variant() != "w800-q85-webp" || first.header.Get("Content-Type") != "image/webp" {
		t.Fatalf("first: %d %s %s %q", first.code, first.variant(), first.header.Get("Content-Type"), first.body)
	}
	if first.hit() {
		t.Fatalf("first request is a hit: %s", first.header.Get("Cache-Status"))
	}
	if v := first.header.Get("Vary"); strings.Contains(v, contract.ImageVariant) || !strings.Contains(v, "ECT") {
		t.Errorf("client-facing Vary %q: want the hint fields, not the internal header", v)
	}
	if first.header.Get("Accept-CH") == "" || !strings.Contains(first.header.Get("Cache-Control"), "max-age=31536000") {
		t.Errorf("headers: %v", first.header)
	}
	if strings.Contains(string(first.body), "GPS") {
		t.Error("GPS reached the client")
	}
	etag := first.header.Get("ETag")

	second := edgeGet(t, photo, "ECT", "4g", "Accept", webp)
	if !second.hit() || second.header.Get("ETag") != etag || string(second.body) != string(first.body) {
		t.Fatalf("second request for the variant: Cache-Status %q, etag %s vs %s", second.header.Get("Cache-Status"), second.header.Get("ETag"), etag)
	}

	// Same bucket, different raw hints (and a forged variant header).
	for _, h := range [][]string{
		{"RTT", "50", "Downlink", "25", "Accept", "image/webp"},
		{"RTT", "150", "Accept", "image/webp,image/apng,*/*"},
		{"ECT", "4g", "Accept", webp, contract.ImageVariant, "w100-q60-jpeg"},
		{"ECT", "4g", "Accept", webp, "Sec-CH-Width", "900"},
	} {
		r := edgeGet(t, photo, h...)
		if !r.hit() || r.header.Get("ETag") != etag || r.variant() != "w800-q85-webp" {
			t.Errorf("%v: Cache-Status %q, variant %s, etag %s; want the cached w800-q85-webp", h, r.header.Get("Cache-Status"), r.variant(), r.header.Get("ETag"))
		}
	}
	if n := len(o.Paths()); n != 1 {
		t.Fatalf("origin fetched the original %d times for one variant", n)
	}

	// A different bucket is a different variant, then cached under its
	// own key whatever raw hints select it.
	slow := edgeGet(t, photo, "ECT", "2g", "Accept", webp)
	if slow.hit() || slow.variant() != "w200-q60-webp" || slow.header.Get("ETag") == etag || len(slow.body) >= len(first.body) {
		t.Fatalf("slow bucket: Cache-Status %q, variant %s, %d bytes", slow.header.Get("Cache-Status"), slow.variant(), len(slow.body))
	}
	for _, h := range [][]string{
		{"Save-Data", "on", "Accept", "image/webp"},
		{"RTT", "3000", "Accept", "image/webp"},
		{"Downlink", "0.3", "ECT", "4g", "Accept", "image/webp"},
	} {
		r := edgeGet(t, photo, h...)
		if !r.hit() || r.header.Get("ETag") != slow.header.Get("ETag") {
			t.Errorf("%v: Cache-Status %q, variant %s; want the cached slow variant", h, r.header.Get("Cache-Status"), r.variant())
		}
	}

	// Explicit sizes snap: ?w=350 and ?w=390 are the same 400 px variant.
	a := edgeGet(t, photo+"?w=350", "ECT", "4g", "Accept", webp)
	b := edgeGet(t, photo+"?w=390", "ECT", "4g", "Accept", webp)
	if a.variant() != "w400-q85-webp" || a.hit() || !b.hit() || b.header.Get("ETag") != a.header.Get("ETag") {
		t.Errorf("?w=350 then ?w=390: %s %q, %s %q", a.variant(), a.header.Get("Cache-Status"), b.variant(), b.header.Get("Cache-Status"))
	}
	// JPEG for a client without WebP/AVIF; no hints at all: the edge's
	// own RTT measurement on loopback says fast.
	j := edgeGet(t, photo)
	if j.code != 200 || j.variant() != "w800-q85-jpeg" || j.header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("no hints: %d %s %s", j.code, j.variant(), j.header.Get("Content-Type"))
	}
	if n := len(o.Paths()); n != 4 {
		t.Errorf("origin fetches %d, want 4 (one per variant made)", n)
	}
	if got := first.header.Get("Cache-Tags"); got != "" {
		t.Errorf("Cache-Tags reached the client: %q", got)
	}

	// The edge stores a variant after its client has the whole response:
	// wait until the last one made is a hit before counting what a purge
	// removes.
	for deadline := time.Now().Add(15 * time.Second); !edgeGet(t, photo).hit(); {
		if time.Now().After(deadline) {
			t.Fatal("the no-hint JPEG variant never became a hit")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Spark-Purge / admin purge by the photo's tag removes every variant.
	if removed := e.purgeTags(t, contract.PhotoTag("wine-gps-2560x3837.jpg")); removed < 4 {
		t.Fatalf("purge removed %d entries, want the 4 variants", removed)
	}
	if r := edgeGet(t, photo, "ECT", "4g", "Accept", webp); r.hit() || r.code != 200 {
		t.Fatalf("after the purge: %d %q, want a miss", r.code, r.header.Get("Cache-Status"))
	}
}

func TestEndToEndNoSSRFAndCleanErrors(t *testing.T) {
	e := startImageEdge(t)
	site, o, evil, evilHits := e.site, e.origin, e.evil, e.evilHits
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	addr := strings.TrimPrefix(site, "http://")

	raw := func(target string) int {
		t.Helper()
		resp, err := caddytest.Exchange(addr, "GET", target, "")
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		return resp.Status
	}
	for _, target := range []string{
		"http://" + evilHost + "/photos/x.jpg",            // absolute-form request target
		"/photos/http://" + evilHost + "/x.jpg",           // a URL in the path
		"/photos/http:%2F%2F" + evilHost + "%2Fx.jpg",     // encoded
		"/photos//" + evilHost + "/x.jpg",                 // scheme-relative
		"/photos/../../etc/passwd",                        // traversal
		"/photos/%2e%2e/%2e%2e/api/secret",                // encoded traversal
		"/photos/..%2F..%2Fapi%2Fsecret",                  // encoded slashes
		"/photos/x.jpg?url=http://" + evilHost + "/x.jpg", // a URL parameter
	} {
		if code := raw(target); code == 200 || code >= 500 {
			t.Errorf("%s: status %d, want a 4xx", target, code)
		}
	}
	if *evilHits != 0 {
		t.Fatalf("the edge fetched from a host named in the request (%d times)", *evilHits)
	}
	for _, p := range o.Paths() {
		if !strings.HasPrefix(p, "/api/photos/") || strings.Contains(p, "..") {
			t.Errorf("origin asked for %q, outside the configured base", p)
		}
	}

	for path, want := range map[string]int{
		"/photos/missing.jpg":   404,
		"/photos/truncated.jpg": 422,
		"/photos/":              400,
	} {
		r := edgeGet(t, site+path)
		if r.code != want || r.hit() || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d (Cache-Status %q, Cache-Control %q), want an uncached %d", path, r.code, r.header.Get("Cache-Status"), r.header.Get("Cache-Control"), want)
		}
		// Without handle_errors spark_image writes the refusal itself.
		if !strings.HasPrefix(string(r.body), http.StatusText(want)+": ") || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: body %q (%s), want the status text and the reason", path, r.body, r.header.Get("Content-Type"))
		}
	}
	before := len(o.Paths())
	if r := edgeGet(t, site+"/photos/truncated.jpg"); r.code != 422 || len(o.Paths()) != before+1 {
		t.Errorf("an error response was served from the cache: %d, fetches %d→%d", r.code, before, len(o.Paths()))
	}
}
