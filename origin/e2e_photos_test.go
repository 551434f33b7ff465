package origin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testphotos"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// TestPhotosThroughEdge uploads a photo through a real edge whose
// spark_image serves the variants of /api/users/{id}/photos/{name} from the
// origin's originals (strip_prefix /api/users), and checks that the
// origin's DELETE purges the cached variants: the tag the origin sends in
// Spark-Purge is the one spark_image put on them.
func TestPhotosThroughEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the edge")
	}
	bin := sparkBinary(t)
	originAddr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 20, DemoSeed: 1, PhotoDir: t.TempDir()})

	ports := freePorts(t, 2)
	edgePort, adminPort := ports[0], ports[1]
	home := t.TempDir()
	caddyfile := filepath.Join(home, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(`{
	admin 127.0.0.1:`+adminPort+`
	persist_config off
	auto_https off
	grace_period 2s
}

http://127.0.0.1:`+edgePort+` {
	spark_image_hints
	spark_cache {
		capacity 16MiB
		max_entry_size 1MiB
		purge_token e2e-photos
		rule /api/users/*/photos/* {
			ignore_query w q fit
		}
	}
	@variants {
		method GET HEAD
		path /api/users/*/photos/*
	}
	spark_image @variants {
		upstream http://`+originAddr+`/api/users
		strip_prefix /api/users
		timeout 30s
	}
	reverse_proxy `+originAddr+`
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startEdgeProcess(t, bin, caddyfile, edgePort, home)

	tok, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	call := func(method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		res, b := httpDo(t, client, method, base+path, string(body), hdr...)
		return res, []byte(b)
	}
	res, body := call("POST", "/api/users/me/photos", testphotos.Read(t, "images", "portrait-hopper-512x600.jpg"),
		"Authorization", "Bearer "+tok, "Content-Type", "image/jpeg")
	if res.StatusCode != 201 {
		t.Fatalf("upload through the edge: %d %s", res.StatusCode, body)
	}
	var up struct{ URL string }
	if err := json.Unmarshal(body, &up); err != nil || up.URL == "" {
		t.Fatalf("upload answer %s: %v", body, err)
	}

	variant := func() (*http.Response, []byte) {
		return call("GET", up.URL, nil, "Accept", "image/webp,image/jpeg", "ECT", "4g")
	}
	isHit := func(r *http.Response) bool { return strings.Contains(r.Header.Get("Cache-Status"), "hit") }
	first, fb := variant()
	if first.StatusCode != 200 || first.Header.Get("Content-Type") != "image/webp" || isHit(first) {
		t.Fatalf("first variant: %d %s %q %.200s", first.StatusCode, first.Header.Get("Content-Type"), first.Header.Get("Cache-Status"), fb)
	}
	if bytes.Contains(fb, []byte("Exif")) {
		t.Fatal("variant carries EXIF")
	}
	// The edge stores a variant after its client has the whole response:
	// poll until it is a hit, with a deadline (not a count of tries) that a
	// loaded machine's slower stores fit in.
	testutil.Eventually(t, 15*time.Second, "the variant served from the edge cache", func() bool {
		r, _ := variant()
		return isHit(r)
	})

	res, body = call("DELETE", strings.Replace(up.URL, "/api/users/1/", "/api/users/me/", 1), nil, "Authorization", "Bearer "+tok)
	if res.StatusCode != 204 {
		t.Fatalf("delete through the edge: %d %s", res.StatusCode, body)
	}
	after, ab := variant()
	if isHit(after) || after.StatusCode != 404 {
		t.Fatalf("after DELETE the variant is still served: %d %q %.200s", after.StatusCode, after.Header.Get("Cache-Status"), ab)
	}
}
