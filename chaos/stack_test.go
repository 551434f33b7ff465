package chaos

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
)

// The stack's secrets (PostGIS refuses the development ones).
const (
	jwtSecret   = "chaos-drill-jwt-secret-0123456789abcdef"
	eventsToken = "chaos-drill-events-token-0123456789abcdef"
	purgeToken  = "chaos-drill-purge-token"
	demoUsers   = 400
)

// stack is what the drills run against: an origin on PostGIS (a cluster of
// its own), Redis (a server of its own) and two edges sharing it.
type stack struct {
	t        testing.TB
	bin      string
	pg       *pgCluster
	redis    *testredis.Server
	photoDir string

	originAddr string
	originProc *testutil.Process

	caddyfile string
	edges     [2]*edge
}

// edge is one edge node.
type edge struct {
	port, admin string
	home        string
	proc        *testutil.Process
}

// URL is the edge's base URL.
func (e *edge) URL() string { return "http://127.0.0.1:" + e.port }

// startStack starts everything; it all stops when t ends.
func startStack(t testing.TB, photoDir string) *stack {
	t.Helper()
	s := &stack{t: t, bin: testutil.SparkBinary(t), photoDir: photoDir}
	s.pg = startPGCluster(t)
	s.spark(context.Background(), "origin", "migrate", "--database-url", s.pg.URL())
	s.spark(context.Background(), "origin", "seed", "--database-url", s.pg.URL(), "--users", strconv.Itoa(demoUsers),
		"--swipes-per-user", "0", "--matched-share", "0")
	s.redis = testredis.Start(t)
	s.originAddr = testutil.FreeAddr(t)
	s.StartOrigin()
	s.caddyfile = testutil.CaddyfileWithRedis(t)
	for i := range s.edges {
		ports := testutil.FreePorts(t, 2)
		s.edges[i] = &edge{port: strconv.Itoa(ports[0]), admin: strconv.Itoa(ports[1]), home: t.TempDir()}
		s.StartEdge(i)
	}
	return s
}

// spark runs a spark subcommand to completion.
func (s *stack) spark(ctx context.Context, args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "SPARK_JWT_SECRET="+jwtSecret)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("spark %s: %v\n%s", strings.Join(args[:2], " "), err, testutil.Tail(string(out), 3000))
	}
}

// StartOrigin starts the origin on its address (again, after KillOrigin).
func (s *stack) StartOrigin() {
	s.t.Helper()
	s.originProc = testutil.StartProcess(s.t, []string{"SPARK_JWT_SECRET=" + jwtSecret, "SPARK_EVENTS_TOKEN=" + eventsToken},
		s.bin, "origin", "--listen", s.originAddr, "--database-url", s.pg.URL(), "--photo-dir", s.photoDir,
		"--push=false", "--location-limit-every=0", "--db-acquire-timeout=2s")
	testutil.WaitHTTP(s.t, "http://"+s.originAddr+"/healthz", 60*time.Second, s.originProc.Exited())
}

// KillOrigin ends the origin at once (SIGKILL).
func (s *stack) KillOrigin() { s.originProc.Kill() }

// StartEdge starts edge i on its ports (again, after KillEdge).
func (s *stack) StartEdge(i int) {
	s.t.Helper()
	e := s.edges[i]
	e.proc = testutil.StartProcess(s.t, []string{"HOME=" + e.home, "XDG_DATA_HOME=" + e.home, "XDG_CONFIG_HOME=" + e.home,
		"SPARK_LISTEN=127.0.0.1:" + e.port, "SPARK_ORIGIN=" + s.originAddr, "SPARK_ADMIN=127.0.0.1:" + e.admin,
		"SPARK_REDIS=" + s.redis.Addr(), "SPARK_REDIS_PREFIX=chaos:", "SPARK_PURGE_TOKEN=" + purgeToken,
		"SPARK_JWT_SECRET=" + jwtSecret, "SPARK_EVENTS_TOKEN=" + eventsToken},
		s.bin, "run", "--config", s.caddyfile, "--adapter", "caddyfile")
	testutil.WaitHTTP(s.t, e.URL()+"/healthz", 60*time.Second, e.proc.Exited())
}

// KillEdge ends edge i at once (SIGKILL).
func (s *stack) KillEdge(i int) { s.edges[i].proc.Kill() }

// token is a bearer token for user id.
func token(t testing.TB, id int64) string {
	t.Helper()
	tok, err := origin.IssueToken(jwtSecret, id, 2*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// purgesSettled says whether both edges have Redis up and no purge waiting
// for it (spark_cache_l2_up 1, spark_cache_purges_pending 0 on their admin
// /metrics).
func (s *stack) purgesSettled() bool {
	for _, e := range s.edges {
		up, ok1 := metricSum("http://127.0.0.1:"+e.admin+"/metrics", "spark_cache_l2_up")
		pending, ok2 := metricSum("http://127.0.0.1:"+e.admin+"/metrics", "spark_cache_purges_pending")
		if !ok1 || !ok2 || up < 1 || pending > 0 {
			return false
		}
	}
	return true
}

// metricSum adds up the samples of a metric in a Prometheus text page; ok
// is false when the page or the metric is missing.
func metricSum(url, name string) (sum float64, ok bool) {
	res, err := http.Get(url)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false
		}
		sum, ok = sum+v, true
	}
	return sum, ok
}
