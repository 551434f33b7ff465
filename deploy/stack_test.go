package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the spark module's directory, the parent of deploy/.
const repoRoot = ".."

// sparkBinary returns the spark binary the tests run: SPARK_BIN when set,
// else one built from ../cmd/spark once per test process.
func sparkBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SPARK_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spark-deploy-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "spark")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", builtBin, "./cmd/spark")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build spark (needs libvips-dev, see scripts/build-deps.sh): %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// freeAddr returns 127.0.0.1:port for a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is a command run for a test and stopped (SIGTERM, then SIGKILL
// after 10 s) when it ends; its output is logged if the test failed.
type process struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startProcess(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{mu: p.mu, w: p.out}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", name, args, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			out := p.out.String()
			p.mu.Unlock()
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			t.Logf("%s %s output (tail):\n%s", filepath.Base(name), args[0], out)
		}
	})
	return p
}

// waitHTTP waits until url answers (any status), failing after timeout or
// when the process exits.
func waitHTTP(t *testing.T, url string, timeout time.Duration, p *process) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("waiting for %s: the process exited", url)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering after %s: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// caddyfileWithRedis writes the repository's Caddyfile with a redis block
// added to its spark_cache, so the edge exports its L2 and purge metrics.
func caddyfileWithRedis(t *testing.T, redisAddr, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = withRedisBlock(b, "\t\tredis "+redisAddr+" {\n\t\t\tkey_prefix "+prefix+"\n\t\t}\n")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// stack is a running origin on PostGIS and an edge on the repository's
// Caddyfile (with Redis) in front of it.
type stack struct {
	bin                  string
	edge, admin, origin  string // host:port
	jwtSecret            string
	originProc, edgeProc *process
}

// startStack starts the stack. The database is SPARK_TEST_DATABASE_URL
// (make test sets it; scripts/test-origin-deps.sh prints one), Redis is
// SPARK_TEST_REDIS or 127.0.0.1:6379; without them the test fails.
func startStack(t *testing.T) *stack {
	t.Helper()
	dbURL := os.Getenv("SPARK_TEST_DATABASE_URL")
	if dbURL == "" {
		t.Fatal("SPARK_TEST_DATABASE_URL is not set: run make test, or export what scripts/test-origin-deps.sh prints")
	}
	redisAddr := os.Getenv("SPARK_TEST_REDIS")
	if redisAddr == "" {
		redisAddr = "127.0.0.1:6379"
	}
	if c, err := net.DialTimeout("tcp", redisAddr, 2*time.Second); err != nil {
		t.Fatalf("Redis at %s: %v (scripts/test-deps.sh starts one)", redisAddr, err)
	} else {
		c.Close()
	}
	s := &stack{
		bin:       sparkBinary(t),
		edge:      freeAddr(t),
		admin:     freeAddr(t),
		origin:    freeAddr(t),
		jwtSecret: "deploy-test-jwt-secret-0123456789abcdef",
	}
	eventsToken := "deploy-test-events-token-0123456789abcdef"
	s.originProc = startProcess(t, nil, s.bin, "origin",
		"--listen", s.origin, "--database-url", dbURL, "--migrate",
		// The database as its own "replica" (not a standby): the replica
		// routing's metrics are exported, lag 0.
		"--replica-url", dbURL,
		"--jwt-secret", s.jwtSecret, "--events-token", eventsToken,
		"--photo-dir", t.TempDir())
	waitHTTP(t, "http://"+s.origin+"/healthz", 2*time.Minute, s.originProc)

	prefix := fmt.Sprintf("spark-deploytest-%d:", os.Getpid())
	s.edgeProc = startProcess(t, []string{
		"SPARK_LISTEN=" + s.edge, "SPARK_HOSTS=127.0.0.1", "SPARK_ORIGIN=" + s.origin, "SPARK_ADMIN=" + s.admin,
		"SPARK_JWT_SECRET=" + s.jwtSecret, "SPARK_EVENTS_TOKEN=" + eventsToken,
		"SPARK_PURGE_TOKEN=deploy-test-purge-token-0123456789abcdef",
	}, s.bin, "run", "--config", caddyfileWithRedis(t, redisAddr, prefix), "--adapter", "caddyfile")
	waitHTTP(t, "http://"+s.admin+"/metrics", 2*time.Minute, s.edgeProc)
	waitHTTP(t, "http://"+s.edge+"/", 30*time.Second, s.edgeProc)
	return s
}

// token returns a bearer token for user.
func (s *stack) token(t *testing.T, user int64) string {
	t.Helper()
	out, err := exec.Command(s.bin, "origin", "token", "--user", strconv.FormatInt(user, 10), "--jwt-secret", s.jwtSecret).Output()
	if err != nil {
		t.Fatalf("spark origin token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// get sends a request and returns the status (the body is drained).
func get(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
		req.Body = io.NopCloser(strings.NewReader(`{"target_id":2,"direction":"like"}`))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// scrape returns url's metrics exposition.
func scrape(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, %v", url, res.StatusCode, err)
	}
	return b
}

// exercise sends the requests that make every labelled series appear: API
// reads and writes through the edge (twice, so the second is a hit), a
// photo variant, the origin's readiness probe.
func (s *stack) exercise(t *testing.T) {
	t.Helper()
	tok := s.token(t, 1)
	base := "http://" + s.edge
	for range 2 {
		get(t, http.MethodGet, base+"/api/matches/suggestions", tok)
		get(t, http.MethodGet, base+"/api/users/1/profile", tok)
		get(t, http.MethodGet, base+"/api/users/1/photos/1?w=200", "")
		get(t, http.MethodGet, base+"/static/app.js", "")
	}
	get(t, http.MethodPost, base+"/api/swipes", tok)
	get(t, http.MethodGet, "http://"+s.origin+"/readyz", "")
}

// TestDeployFilesNameExportedMetrics runs an edge and an origin, scrapes
// both and checks that every query of the dashboard, of the alert rules and
// of their unit tests names metrics (and label names) they export.
func TestDeployFilesNameExportedMetrics(t *testing.T) {
	s := startStack(t)
	s.exercise(t)

	e := exported{}
	for _, url := range []string{"http://" + s.admin + "/metrics", "http://" + s.origin + "/metrics"} {
		if err := e.addScrape(bytes.NewReader(scrape(t, url))); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	// What the scrape must hold for the check to mean anything: one metric
	// of each process and of the edge's Redis tier.
	for _, m := range []string{"spark_cache_requests_total", "spark_cache_l2_up", "spark_websocket_connections_active",
		"caddy_http_requests_total", "spark_matching_duration_seconds_bucket", "spark_origin_db_pool_connections"} {
		if e[m] == nil {
			t.Fatalf("the running stack does not export %s: the scrape is not what this test expects", m)
		}
	}

	qs, records := deployQueries(t)
	if problems := e.check(qs, records); len(problems) > 0 {
		t.Errorf("%d queries name what the running edge and origin do not export:\n  %s",
			len(problems), strings.Join(problems, "\n  "))
	}
}

// deployQueries returns every query of the dashboard, the rule files and
// the rule tests, and the names the rules record.
func deployQueries(t *testing.T) ([]query, map[string]bool) {
	t.Helper()
	d, err := loadDashboard("grafana/spark.json")
	if err != nil {
		t.Fatal(err)
	}
	qs := d.queries()
	records := map[string]bool{}
	rules, _ := filepath.Glob("prometheus/*.rules.yml")
	tests, _ := filepath.Glob("prometheus/*.test.yml")
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("no rule files (%v) or rule tests (%v) under prometheus/", rules, tests)
	}
	for _, f := range rules {
		rq, rec, err := loadRules(f)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, rq...)
		for k := range rec {
			records[k] = true
		}
	}
	for _, f := range tests {
		tq, err := loadRuleTests(f)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, tq...)
	}
	return qs, records
}
