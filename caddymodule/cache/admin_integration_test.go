package cache

// Integration tests of the purge API (admin.go, purge.go): the admin
// module's route and its old alias, spark_purge, and the secrets purges
// and Redis need.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/internal/testutil"
)

// TestIntegrationAdminPurge: POST /spark/purge on the admin API.
func TestIntegrationAdminPurge(t *testing.T) {
	e := startEdge(t, "")
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=100")
		w.Header().Set("Content-Type", "application/octet-stream")
		if strings.HasPrefix(r.URL.Path, "/p/") {
			w.Header().Set("Cache-Tags", "group:p")
		}
		_, _ = io.WriteString(w, "purgeable "+r.URL.RequestURI())
	})
	paths := []string{"/p/a", "/p/b?x=1&y=2", "/p/c", "/q/a", "/q/b"}
	prime := func() {
		for _, p := range paths {
			e.get(p)
		}
	}
	hits := func() map[string]bool {
		m := map[string]bool{}
		for _, p := range paths {
			m[p] = e.get(p).isHit()
		}
		return m
	}
	cases := []struct {
		body    string
		removed int
		gone    []string
	}{
		{`{"keys":["/p/a"]}`, 1, []string{"/p/a"}},
		{`{"keys":["/p/b?y=2&x=1", "http://any.host/q/a"]}`, 2, []string{"/p/b?x=1&y=2", "/q/a"}},
		{`{"keys":["/never/stored"]}`, 0, nil},
		{`{"tags":["group:p"]}`, 3, []string{"/p/a", "/p/b?x=1&y=2", "/p/c"}},
		{`{"tags":["nope"]}`, 0, nil},
		{`{"prefix":"/q"}`, 2, []string{"/q/a", "/q/b"}},
		{`{"prefix":"/"}`, 5, paths},
		{`{"keys":["/q/a"],"tags":["group:p"]}`, 4, []string{"/q/a", "/p/a", "/p/b?x=1&y=2", "/p/c"}},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			prime()
			for p, hit := range hits() {
				if !hit {
					t.Fatalf("%s not stored before the purge", p)
				}
			}
			if n := e.purge(c.body); n != c.removed {
				t.Errorf("removed %d, want %d", n, c.removed)
			}
			for p, hit := range hits() {
				if hit == slices.Contains(c.gone, p) {
					t.Errorf("%s: hit=%v after purge", p, hit)
				}
			}
		})
	}

	prime()
	refused := []struct {
		name, method, token, body string
		status                    int
	}{
		{"no token", "POST", "", `{"prefix":"/"}`, 401},
		{"wrong token", "POST", "wrong", `{"prefix":"/"}`, 401},
		{"token prefix", "POST", testPurgeToken[:5], `{"prefix":"/"}`, 401},
		{"empty body", "POST", testPurgeToken, ``, 400},
		{"not JSON", "POST", testPurgeToken, `purge everything`, 400},
		{"empty object", "POST", testPurgeToken, `{}`, 400},
		{"unknown field", "POST", testPurgeToken, `{"all":true}`, 400},
		{"wrong types", "POST", testPurgeToken, `{"keys":"/p/a"}`, 400},
		{"relative prefix", "POST", testPurgeToken, `{"prefix":"p"}`, 400},
		{"key without path", "POST", testPurgeToken, `{"keys":["p/a"]}`, 400},
		{"bad tag", "POST", testPurgeToken, `{"tags":["a b"]}`, 400},
		{"empty tag", "POST", testPurgeToken, `{"tags":[""]}`, 400},
		{"trailing data", "POST", testPurgeToken, `{"prefix":"/"} {"prefix":"/"}`, 400},
		{"array", "POST", testPurgeToken, `["/p/a"]`, 400},
		{"huge", "POST", testPurgeToken, `{"keys":["/` + strings.Repeat("a", 2<<20) + `"]}`, 400},
		{"GET", "GET", testPurgeToken, ``, 405},
	}
	for _, path := range []string{purgePath, legacyPurgePath} {
		for _, c := range refused {
			t.Run("refused "+c.name+" on "+path, func(t *testing.T) {
				r := e.adminDo(c.method, path, c.token, c.body)
				if r.status != c.status {
					t.Errorf("status %d, want %d: %.200s", r.status, c.status, r.body)
				}
				if c.status == 401 && r.header.Get("Www-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			})
		}
	}
	for p, hit := range hits() {
		if !hit {
			t.Errorf("%s removed by a refused purge", p)
		}
	}
}

// The admin route is named after its module (admin.api.spark_cache ->
// /spark_cache/purge); /spark/purge, its name before, still purges for one
// release and points to the new one.
func TestIntegrationAdminPurgeLegacyPath(t *testing.T) {
	e := startEdge(t, "")
	for _, path := range []string{purgePath, legacyPurgePath} {
		e.get("/old/a")
		expect(t, "before the purge on "+path, e.get("/old/a"), 200, "origin /old/a", true)
		r := e.adminDo(http.MethodPost, path, testPurgeToken, `{"keys":["/old/a"]}`)
		if r.status != http.StatusOK || r.body != `{"removed":1}`+"\n" {
			t.Errorf("POST %s: %d %q, want 200 {\"removed\":1}", path, r.status, r.body)
		}
		if link := r.header.Get("Link"); (path == legacyPurgePath) != (link == `</spark_cache/purge>; rel="successor-version"`) {
			t.Errorf("POST %s: Link %q", path, link)
		}
		expect(t, "after the purge on "+path, e.get("/old/a"), 200, "origin /old/a", false)
	}
}

// Purge keys are normalized like request keys: sorted query, the rule's
// ignored parameters dropped.
func TestIntegrationAdminPurgeKeyIgnoresQueryParams(t *testing.T) {
	e := startEdge(t, "")
	e.get("/j?b=1&a=2")
	if r := e.get("/j?a=2&b=1&utm_source=x"); r.header.Get("Cache-Status") == "" || r.status != 200 {
		t.Fatalf("second GET: %d %q", r.status, r.header.Get("Cache-Status"))
	}
	if n := e.purge(`{"keys":["/j?utm_source=a&b=1&a=2"]}`); n != 1 {
		t.Fatalf("purge by key with an ignored parameter removed %d, want 1", n)
	}
	if got := e.origin.hits("GET", "/j"); got != 1 {
		t.Fatalf("origin hits before refetch = %d, want 1", got)
	}
	e.get("/j?a=2&b=1")
	if got := e.origin.hits("GET", "/j"); got != 2 {
		t.Fatalf("origin hits after purge = %d, want 2", got)
	}
}

// spark_purge serves the purge API on a listener of the operator's choosing
// with the cache's token: right token purges, a wrong or missing one is 401
// (the token never echoed), other methods 405, junk 400; a cache name no
// spark_cache has is a 500 that says so.
func TestIntegrationPurgeHandler(t *testing.T) {
	token := randomSecret(t, "purge")
	t.Setenv("SPARK_TEST_PURGE_TOKEN", token)
	e, ports := startEdgeWith(t, 4, func(p []int, originAddr string) string {
		return caddytest.GlobalOptions(p[0], "") + `
http://:` + strconv.Itoa(p[1]) + ` {
	bind 127.0.0.1
	spark_cache {
		name edge
		capacity 16MiB
		max_entry_size 64KiB
		purge_token {env.SPARK_TEST_PURGE_TOKEN}
	}
	reverse_proxy ` + originAddr + `
}

http://:` + strconv.Itoa(p[2]) + ` {
	bind 127.0.0.1
	spark_purge /purge {
		cache edge
	}
	respond "not the purge path" 404
}

http://:` + strconv.Itoa(p[3]) + ` {
	bind 127.0.0.1
	spark_purge {
		cache no-such-cache
	}
}
`
	})
	purgeURL := "http://127.0.0.1:" + strconv.Itoa(ports[2]) + "/purge"
	call := func(method, url, auth, body string) *resp {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return e.send(req)
	}

	expect(t, "first GET", e.get("/p/1"), 200, "origin /p/1", false)
	expect(t, "second GET", e.get("/p/1"), 200, "origin /p/1", true)

	wrong := token[:len(token)-1] + "x"
	for _, auth := range []string{"", "Bearer " + wrong, "Bearer", "Basic " + token, "bearer " + token + "x"} {
		r := call(http.MethodPost, purgeURL, auth, `{"keys":["/p/1"]}`)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("purge with Authorization %q: %d %q, want 401 with WWW-Authenticate", auth, r.status, r.body)
		}
		if strings.Contains(r.body, token[:20]) || strings.Contains(r.body, wrong) {
			t.Errorf("401 body echoes a token: %s", r.body)
		}
	}
	if r := call(http.MethodGet, purgeURL, "Bearer "+token, ""); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 with Allow: POST", r.status, r.header.Get("Allow"))
	}
	if r := call(http.MethodPost, purgeURL, "Bearer "+token, `{"keys":["/p/1"],"bogus":1}`); r.status != http.StatusBadRequest || !strings.Contains(r.body, `"error"`) {
		t.Errorf("junk body: %d %s, want 400 with the reason", r.status, r.body)
	}
	expect(t, "GET before the purge", e.get("/p/1"), 200, "origin /p/1", true)

	r := call(http.MethodPost, purgeURL, "Bearer "+token, `{"keys":["/p/1"]}`)
	var pr PurgeResponse
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &pr) != nil || pr.Removed != 1 {
		t.Fatalf("purge: %d %s, want 200 {\"removed\":1}", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("purge answer headers %v", r.header)
	}
	expect(t, "GET after the purge", e.get("/p/1"), 200, "origin /p/1", false)

	// The matcher leaves other paths of that site alone.
	if r := call(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(ports[2])+"/other", "Bearer "+token, `{"keys":["/p/1"]}`); r.status != http.StatusNotFound {
		t.Errorf("POST /other on the purge site: %d, want the site's 404", r.status)
	}
	r = call(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(ports[3])+"/", "Bearer "+token, `{"keys":["/p/1"]}`)
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "no-such-cache") {
		t.Errorf("purge of an unknown cache: %d %s, want 500 naming it", r.status, r.body)
	}
	if cfg := e.adminDo(http.MethodGet, "/config/", "", ""); strings.Contains(cfg.body, token) {
		t.Errorf("GET /config/ holds the purge token")
	}
}

// randomSecret returns a secret no config or response holds by chance.
func randomSecret(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// Secrets written as {env.*} placeholders are resolved at provision: the
// purge token and the Redis credentials work, and neither GET /config/ on
// the admin endpoint nor any part of it ever holds them. (With the token
// written as {$SPARK_PURGE_TOKEN}, the Caddyfile's adapt-time form, the
// config held the token itself.)
func TestIntegrationSecretsNotInConfig(t *testing.T) {
	token := randomSecret(t, "purge")
	redisUser, redisPassword := randomSecret(t, "user"), randomSecret(t, "password")
	t.Setenv("SPARK_TEST_PURGE_TOKEN", token)
	t.Setenv("SPARK_TEST_REDIS_USER", redisUser)
	t.Setenv("SPARK_TEST_REDIS_PASSWORD", redisPassword)

	// A Redis of the test's own that only the ACL user may use.
	rs := startOwnRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer admin.Close()
	ctx := ctxTimeout(t, 10*time.Second)
	if err := admin.Do(ctx, "ACL", "SETUSER", redisUser, "on", ">"+redisPassword, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil {
		t.Fatal(err)
	}
	asUser := redis.NewClient(&redis.Options{Addr: rs.Addr(), Username: redisUser, Password: redisPassword})
	defer asUser.Close()

	e, _ := startEdgeWith(t, 2, func(p []int, originAddr string) string {
		return caddytest.GlobalOptions(p[0], "") + `
http://:` + strconv.Itoa(p[1]) + ` {
	bind 127.0.0.1
	spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
		purge_token {env.SPARK_TEST_PURGE_TOKEN}
		redis ` + rs.Addr() + ` {
			username {env.SPARK_TEST_REDIS_USER}
			password {env.SPARK_TEST_REDIS_PASSWORD}
			key_prefix secrets:
			read_timeout 2s
			write_timeout 2s
		}
	}
	reverse_proxy ` + originAddr + `
}
`
	})

	// The credentials reach Redis: a stored response lands there.
	expect(t, "first GET", e.get("/s"), 200, "origin /s", false)
	testutil.Eventually(t, 10*time.Second, "the entry in Redis", func() bool {
		keys, err := asUser.Keys(ctx, "secrets:*").Result()
		return err == nil && len(keys) > 0
	})
	// The token purges.
	if r := e.adminDo(http.MethodPost, purgePath, token, `{"keys":["/s"]}`); r.status != http.StatusOK || r.body != `{"removed":1}`+"\n" {
		t.Fatalf("purge with the token from the environment: %d %q, want 200 {\"removed\":1}", r.status, r.body)
	}
	if r := e.adminDo(http.MethodPost, purgePath, "{env.SPARK_TEST_PURGE_TOKEN}", `{"keys":["/s"]}`); r.status != http.StatusUnauthorized {
		t.Fatalf("purge with the placeholder itself as the token: %d, want 401", r.status)
	}

	for _, path := range []string{"/config/", "/config/apps/http/servers"} {
		r := e.adminDo(http.MethodGet, path, "", "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		for _, secret := range []string{token, redisUser, redisPassword} {
			if strings.Contains(r.body, secret) {
				t.Errorf("GET %s holds a secret: %s", path, r.body)
			}
		}
		if path == "/config/" {
			for _, name := range []string{"{env.SPARK_TEST_PURGE_TOKEN}", "{env.SPARK_TEST_REDIS_USER}", "{env.SPARK_TEST_REDIS_PASSWORD}"} {
				if !strings.Contains(r.body, name) {
					t.Errorf("GET /config/ lacks the placeholder %s: %s", name, r.body)
				}
			}
		}
	}
}

// A Redis credential placeholder that comes out empty (an unset variable)
// stops the config from loading instead of connecting without it.
func TestIntegrationEmptyRedisSecretRefused(t *testing.T) {
	t.Setenv("SPARK_TEST_REDIS_PASSWORD", "")
	ports := testutil.FreePorts(t, 2)
	err := caddytest.TryLoad(t, caddytest.GlobalOptions(ports[0], "")+`
http://:`+strconv.Itoa(ports[1])+` {
	bind 127.0.0.1
	spark_cache {
		capacity 16MiB
		max_entry_size 64KiB
		redis `+testRedis(t)+` {
			password {env.SPARK_TEST_REDIS_PASSWORD}
		}
	}
	respond "x"
}
`)
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("a config whose Redis password placeholder is empty loaded")
	}
	if !strings.Contains(err.Error(), "password") {
		t.Fatalf("error %q does not name the password", err)
	}
}
