package origin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// TestEndToEndThroughEdge runs the origin (embedded store, demo data) behind
// a real edge: the spark binary built from ./cmd/spark, started with
// `spark run --config Caddyfile` (the repository's own Caddyfile). It checks
// that the cache headers and purges work together: suggestions are stored
// and hit, a swipe purges them so the next request is a miss without the
// swiped user, and a profile update purges the cached profile. The origin
// package does not import Caddy; the edge is a separate process. SPARK_BIN
// points at a prebuilt binary; otherwise the test builds one.
func TestEndToEndThroughEdge(t *testing.T) {
	originAddr, base := startStack(t, 300)

	tok, err := origin.IssueToken(origin.DevJWTSecret, 1, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		h := []string{"Authorization", "Bearer " + tok}
		if body != "" {
			h = append(h, "Content-Type", "application/json")
		}
		return httpDo(t, http.DefaultClient, method, base+path, body, append(h, hdr...)...)
	}
	isHit := func(res *http.Response) bool {
		for _, p := range strings.Split(res.Header.Get("Cache-Status"), ";") {
			if strings.TrimSpace(p) == "hit" {
				return true
			}
		}
		return false
	}
	suggestionIDs := func(body string) []int64 {
		var out struct {
			Suggestions []struct {
				ID int64 `json:"id"`
			} `json:"suggestions"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("suggestions body %q: %v", body, err)
		}
		var ids []int64
		for _, s := range out.Suggestions {
			ids = append(ids, s.ID)
		}
		return ids
	}

	const sugg = "/api/matches/suggestions?limit=5"
	res, body := call("GET", sugg, "")
	if res.StatusCode != 200 || isHit(res) {
		t.Fatalf("first suggestions: %d hit=%v %q", res.StatusCode, isHit(res), res.Header.Get("Cache-Status"))
	}
	if res.Header.Get("Cache-Tags") != "" {
		t.Fatalf("Cache-Tags forwarded to the client: %q", res.Header.Get("Cache-Tags"))
	}
	first := suggestionIDs(body)
	if len(first) == 0 {
		t.Fatal("demo user 1 has no suggestions")
	}
	res, _ = call("GET", sugg, "")
	if !isHit(res) {
		t.Fatalf("second suggestions not a hit: %q", res.Header.Get("Cache-Status"))
	}
	target := first[0]
	res, _ = call("POST", "/api/swipes", fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, target))
	if res.StatusCode != 201 {
		t.Fatalf("swipe: %d", res.StatusCode)
	}
	res, body = call("GET", sugg, "")
	if res.StatusCode != 200 || isHit(res) {
		t.Fatalf("suggestions after a swipe should be a miss: %q", res.Header.Get("Cache-Status"))
	}
	if slices.Contains(suggestionIDs(body), target) {
		t.Fatalf("swiped user %d still suggested", target)
	}

	prof := fmt.Sprintf("/api/users/%d/profile", target)
	res, _ = call("GET", prof, "")
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || etag == "" {
		t.Fatalf("profile: %d etag %q", res.StatusCode, etag)
	}
	res, _ = call("GET", prof, "")
	if !isHit(res) || res.Header.Get("ETag") != etag {
		t.Fatalf("profile not served from the edge: %q etag %q", res.Header.Get("Cache-Status"), res.Header.Get("ETag"))
	}
	// Issue 10 item 2: the stored profile never reaches a request the
	// origin refuses. No token, a garbage or forged one, an expired one:
	// the edge's own 401, the same document the origin sends, and never
	// the stored body.
	direct, err := http.Get("http://" + originAddr + prof)
	if err != nil {
		t.Fatal(err)
	}
	originBody, _ := io.ReadAll(direct.Body)
	direct.Body.Close()
	if direct.StatusCode != 401 {
		t.Fatalf("origin without a token: %d", direct.StatusCode)
	}
	expired, _ := origin.IssueToken(origin.DevJWTSecret, 1, time.Minute, time.Now().Add(-time.Hour))
	forged, _ := origin.IssueToken("not-the-secret-of-this-origin-0123456789", 1, time.Hour, time.Now())
	for name, auth := range map[string]string{"no token": "", "garbage": "Bearer garbage", "forged": "Bearer " + forged,
		"expired": "Bearer " + expired, "basic": "Basic MTpw"} {
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		for _, method := range []string{"GET", "HEAD"} {
			res, b := httpDo(t, http.DefaultClient, method, base+prof, "", hdr...)
			if res.StatusCode != 401 || res.Header.Get("Cache-Status") != "" || res.Header.Get("Content-Type") != "application/problem+json" ||
				res.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("%s %s through the edge: %d Cache-Status %q %q", name, method, res.StatusCode, res.Header.Get("Cache-Status"), b)
			}
			if method == "GET" && b != string(originBody) {
				t.Fatalf("%s: the edge's 401 %q differs from the origin's %q", name, b, originBody)
			}
		}
	}
	res, _ = call("GET", prof, "")
	if !isHit(res) {
		t.Fatalf("valid token after refusals not a hit: %q", res.Header.Get("Cache-Status"))
	}
	// Issue 10 item 4: a write to a non-canonical spelling of the URL
	// (which the origin once redirected to the canonical one, and the edge
	// then invalidated) gets a 404 and empties nothing.
	for _, p := range []string{"/" + prof, fmt.Sprintf("/api/users/%d/../%d/profile", target, target), fmt.Sprintf("/api/users/./%d/profile", target)} {
		res, _ = call("POST", p, "{}")
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Location") != "" {
			t.Fatalf("POST %s: %d Location %q, want 404 without a redirect", p, res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ = call("GET", prof, ""); !isHit(res) {
			t.Fatalf("POST %s emptied the stored profile: %q", p, res.Header.Get("Cache-Status"))
		}
	}

	// The target updates their profile: the edge drops the cached copy.
	targetTok, _ := origin.IssueToken(origin.DevJWTSecret, target, time.Hour, time.Now())
	pres, _ := httpDo(t, http.DefaultClient, "PUT", base+"/api/users/me/profile", `{"name":"Renamed","age":30,"gender":"woman","bio":"new bio"}`,
		"Authorization", "Bearer "+targetTok, "Content-Type", "application/json", "If-Match", etag)
	if pres.StatusCode != 200 {
		t.Fatalf("profile update through the edge: %d", pres.StatusCode)
	}
	res, body = call("GET", prof, "")
	if isHit(res) || res.Header.Get("ETag") == etag || !strings.Contains(body, "Renamed") {
		t.Fatalf("stale profile after update: %q etag %q body %s", res.Header.Get("Cache-Status"), res.Header.Get("ETag"), body)
	}
}

// startStack runs the origin (embedded store, demoUsers demo users, its
// event stream with the development token) and, in front of it, an edge
// process on the repository's Caddyfile with the development JWT secret.
// It returns the origin's address and the edge's base URL.
func startStack(t *testing.T, demoUsers int) (originAddr, edgeBase string) {
	t.Helper()
	bin := sparkBinary(t)
	originAddr, _ = startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: demoUsers, DemoSeed: 1})
	ports := freePorts(t, 2)
	edgeBase = startEdgeProcess(t, bin, filepath.Join(moduleRoot(t), "Caddyfile"), ports[0], t.TempDir(),
		"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+originAddr, "SPARK_ADMIN=127.0.0.1:"+ports[1],
		"SPARK_JWT_SECRET="+origin.DevJWTSecret)
	return originAddr, edgeBase
}

// httpDo sends a request (a body only when body is not empty; hdr is
// alternating name, value) and returns the answer with its body read.
func httpDo(t *testing.T, client *http.Client, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func moduleRoot(t *testing.T) string { return testutil.ModuleRoot(t) }

// freePorts returns n distinct free ports on 127.0.0.1, as the strings
// addresses and environment variables take.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i, p := range testutil.FreePorts(t, n) {
		out[i] = strconv.Itoa(p)
	}
	return out
}

// startEdgeProcess runs `spark run` on a Caddyfile with HOME (Caddy's
// storage) in home and extra environment (by default SPARK_EVENTS_TOKEN is
// origin.DevEventsToken, the embedded origin's: the repository Caddyfile's
// spark_realtime needs one), waits until the edge on edgePort
// answers HTTP (the repository's Caddyfile answers /healthz with a 404: the
// origin's health endpoints are not routed through the edge), and kills it
// when the test ends (its output is logged if the test failed). It returns
// the edge's base URL.
func startEdgeProcess(t *testing.T, bin, caddyfile, edgePort, home string, env ...string) string {
	t.Helper()
	env = append([]string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home,
		"SPARK_EVENTS_TOKEN=" + origin.DevEventsToken}, env...)
	edge := testutil.StartProcess(t, env, bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	t.Cleanup(edge.Kill) // before StartProcess's own graceful stop: nothing to drain
	base := "http://127.0.0.1:" + edgePort
	testutil.WaitHTTP(t, base+"/healthz", 60*time.Second, edge.Exited())
	return base
}

// devToken is a token for user id under the development secret, which the
// edges and origins these tests start share.
func devToken(t testing.TB, id int64) string {
	t.Helper()
	tok, err := origin.IssueToken(origin.DevJWTSecret, id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
