package chat

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// stack is the origin (embedded store, demo users) publishing to Redis and
// two edges on the repository's Caddyfile taking their events from it, as
// processes of a freshly built bin/spark.
type stack struct {
	edges []string // base URLs
}

func startStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds bin/spark and starts the origin and two edges")
	}
	redisAddr := testredis.Shared(t)
	prefix := testredis.Prefix(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "spark")
	build := exec.Command("go", "build", "-o", bin, "./cmd/spark")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/spark: %v\n%s", err, out)
	}
	caddyfile, err := os.ReadFile(filepath.Join("..", "..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	const line = "events origin {env.SPARK_EVENTS_TOKEN}"
	if !bytes.Contains(caddyfile, []byte(line)) {
		t.Fatalf("the repository's Caddyfile has no %q line", line)
	}
	caddyfile = bytes.Replace(caddyfile, []byte(line), []byte("events redis {$SPARK_REDIS} {\n\t\t\t\tkey_prefix "+prefix+"\n\t\t\t}"), 1)
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, caddyfile, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := testutil.FreePorts(t, 5)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	home := filepath.Join(dir, "home")
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"SPARK_ORIGIN=" + addr(0), "SPARK_JWT_SECRET=" + loadtest.DevJWTSecret, "SPARK_REDIS=" + redisAddr, "SPARK_DATABASE_URL="}
	origin := testutil.StartProcess(t, env, bin, "origin", "--listen", addr(0), "--demo-users", "200",
		"--photo-dir", filepath.Join(dir, "photos"), "--events-redis", redisAddr, "--events-redis-prefix", prefix)
	testutil.WaitHTTP(t, "http://"+addr(0)+"/healthz", 30*time.Second, origin.Exited())
	s := &stack{}
	for i := 0; i < 2; i++ {
		listen, admin := addr(1+2*i), addr(2+2*i)
		edge := testutil.StartProcess(t, append(env, "SPARK_LISTEN="+listen, "SPARK_ADMIN="+admin), bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
		// The edge answers only /api/* and /static/*: its /healthz is a 404.
		testutil.WaitHTTP(t, "http://"+listen+"/healthz", 30*time.Second, edge.Exited())
		s.edges = append(s.edges, "http://"+listen)
	}
	return s
}

// TestChatEndToEnd runs the chat scenario through two real edges sharing
// Redis: every message arrives exactly once although a quarter of the
// connections are dropped and resumed on the other edge; and a message the
// client throws away is counted lost.
func TestChatEndToEnd(t *testing.T) {
	s := startStack(t)
	t.Run("drops-resumed-exactly-once", func(t *testing.T) {
		res, err := Run(context.Background(), Config{Edges: s.edges, Users: 40, FirstUser: 11, Duration: 4 * time.Second,
			MessageRate: 40, TypingRate: 20, RESTRate: 10, DropShare: 0.25, Drain: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Chat
		m := c.Messages
		t.Logf("%+v drops %d resumes %d closes %v errors %v", m, c.Drops, c.Resumes, c.ServerCloses, c.ErrorFrames)
		if c.Connections != 40 {
			t.Fatalf("%d connections, want 40", c.Connections)
		}
		if m.Sent < 100 || m.Lost != 0 || m.Duplicated != 0 || m.Misdelivered != 0 || m.Unconfirmed != 0 || m.Received != m.Sent {
			t.Fatalf("ledger %+v: want every message (≥ 100) received exactly once", m)
		}
		if c.Drops != 10 || c.Resumes < c.Drops {
			t.Fatalf("%d drops, %d resumes: want 10 drops, each resumed", c.Drops, c.Resumes)
		}
		if c.ReplayedSeqs != 0 || c.Typing.Misdelivered != 0 {
			t.Fatalf("replayed seqs %d, misdelivered typing %d", c.ReplayedSeqs, c.Typing.Misdelivered)
		}
		if c.Typing.Sent == 0 || c.Typing.Received == 0 {
			t.Fatalf("typing %+v: want some sent and received", c.Typing)
		}
		if res.REST.Total().Requests == 0 {
			t.Fatal("no REST calls recorded")
		}
		rep := res.Report(loadtest.DefaultChatTargets())
		var b strings.Builder
		if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "lost 0, duplicated 0") {
			t.Fatalf("text report %v:\n%s", err, b.String())
		}
	})
	t.Run("discarded-frame-counted-lost", func(t *testing.T) {
		var once sync.Once
		var discarded string
		discard := func(user int64, f *sparkv1.Frame) bool {
			if user != 62 || f.Type != sparkv1.TypeEvent || f.Event.Kind != sparkv1.KindMessage {
				return false
			}
			m, err := f.Event.MessageData()
			if err != nil || !strings.Contains(m.ClientMsgID, "-61-") { // a message from user 61 to user 62
				return false
			}
			hit := false
			once.Do(func() { hit, discarded = true, m.ClientMsgID })
			return hit
		}
		res, err := Run(context.Background(), Config{Edges: s.edges, Users: 10, FirstUser: 61, Duration: 2 * time.Second,
			MessageRate: 20, Drain: 3 * time.Second, Discard: discard})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Chat.Messages
		if discarded == "" {
			t.Fatal("no message from user 61 reached its peer to be discarded")
		}
		if m.Lost != 1 || m.Duplicated != 0 || m.Received != m.Sent-1 {
			t.Fatalf("ledger %+v after discarding %s: want exactly 1 lost", m, discarded)
		}
		if rep := res.Report(loadtest.DefaultChatTargets()); rep.Pass {
			t.Fatal("a run with a lost message passed")
		}
	})
}
