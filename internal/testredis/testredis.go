// Package testredis gives tests real Redis servers: the machine's shared
// one (make test starts it), redis-server processes of their own on free
// ports, 3-master Redis Clusters, Sentinels (StartSentinel), and a Proxy
// that cuts connections or fails chosen commands. Tests fail, never skip, when Redis
// cannot be had.
package testredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/internal/testutil"
)

// Shared returns the address of the machine's Redis: $SPARK_TEST_REDIS, or
// 127.0.0.1:6379.
func Shared(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("SPARK_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s unreachable (make test starts it; or set SPARK_TEST_REDIS): %v", addr, err)
	}
	return addr
}

// Prefix returns a key prefix no other test run uses.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("sparktest:%s:%d:", t.Name(), time.Now().UnixNano())
}

// Server is a redis-server process of the test's own. Stop and Start it at
// will; it is stopped when the test ends.
type Server struct {
	t    testing.TB
	port int
	dir  string
	lead []string // before the common arguments: a Sentinel's config file
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startTimeout bounds how long redis-server may take to answer PING: a
// liveness bound, generous for a loaded CI machine.
const startTimeout = 30 * time.Second

// Start starts redis-server on a free port with extra arguments.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startServer(t, false, extra)
}

// StartSentinel starts a Redis Sentinel on a free port that monitors the
// master at masterAddr under name, with a quorum of 1.
func StartSentinel(t testing.TB, name, masterAddr string) *Server {
	t.Helper()
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatalf("sentinel: master address %q: %v", masterAddr, err)
	}
	return startServer(t, true, []string{"--sentinel", "monitor", name, host, port, "1"})
}

func startServer(t testing.TB, sentinel bool, extra []string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not installed (make test installs it): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), args: extra}
	if sentinel { // a Sentinel keeps its state in a config file of its own
		conf := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(conf, nil, 0o644); err != nil {
			t.Fatalf("sentinel config: %v", err)
		}
		s.lead = []string{conf, "--sentinel"}
	}
	t.Cleanup(s.Stop)
	// The port is free when testutil.FreePort returns, not necessarily when
	// redis-server binds it (another test package's connection may take
	// it meanwhile): on a first start, a bind failure tries another port.
	for attempt := 1; ; attempt++ {
		s.port = testutil.FreePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt < 5 && strings.Contains(err.Error(), "already in use") {
			t.Logf("redis-server on %d: %v; trying another port", s.port, err)
			continue
		}
		t.Fatal(err)
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// CPUTime is the CPU time (user and system) the running server process
// has used, read from /proc: benchmarks count Redis's share of the work
// per operation with it. Its resolution is the kernel's clock tick.
func (s *Server) CPUTime() (time.Duration, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, errors.New("redis-server is not running")
	}
	return procCPUTime(s.cmd.Process.Pid)
}

// procCPUTime reads utime+stime of a process from /proc/<pid>/stat (in
// clock ticks, 100 per second on Linux).
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	// Fields after the command name, which ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("read cpu time of %d: unexpected stat %q", pid, b)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime (fields 14 and 15)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// Start (re)starts the server on its port and directory.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// start runs redis-server on s.port and waits until it answers PING; it
// returns an error (with the server's log) when the server exits first or
// does not answer within startTimeout.
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	_ = os.Remove(logPath) // this start's log only
	args := append(append(slices.Clone(s.lead), "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", logPath), s.args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(50 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on %d exited: %s", s.port, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on %d did not answer within %s: %s", s.port, startTimeout, log)
		}
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd, s.done = nil, nil
	}
}

// StartCluster starts a 3-master Redis Cluster on free ports and waits for
// cluster_state:ok.
func StartCluster(t testing.TB) []*Server {
	t.Helper()
	var nodes []*Server
	var addrs []string
	for i := 0; i < 3; i++ {
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr())
	}
	out, err := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs { // every node must know the whole slot map
		WaitClusterOK(t, a)
	}
	return nodes
}

// WaitClusterOK waits until the node at addr reports cluster_state:ok.
func WaitClusterOK(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	// A liveness bound: a loaded machine is slow at forming a cluster and
	// at a restarted master rejoining one.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
	}
	t.Fatalf("cluster at %s did not reach cluster_state:ok within 60 s", addr)
}

// Addrs returns the servers' addresses.
func Addrs(nodes []*Server) []string {
	var a []string
	for _, n := range nodes {
		a = append(a, n.Addr())
	}
	return a
}
