package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/internal/testutil"
)

// pgBinDir is where PostgreSQL 15's server binaries live (Debian's layout,
// what scripts/test-origin-deps.sh installs).
const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgCluster is a PostgreSQL cluster of the drill's own: its own data
// directory under the OS temp dir and its own port on 127.0.0.1, never the
// machine's shared one, so a drill may stop and restart it at will.
type pgCluster struct {
	t    testing.TB
	dir  string // data directory
	port int
	asPG bool // run the server binaries as the postgres OS user (we are root)
}

// startPGCluster makes a cluster with initdb, starts it and creates the
// database spark with PostGIS. It is stopped and removed when the test ends.
func startPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBinDir, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 server binaries missing (make test-deps installs them): %v", err)
	}
	dir, err := os.MkdirTemp("", "spark-chaos-pg-")
	if err != nil {
		t.Fatalf("data directory: %v", err)
	}
	c := &pgCluster{t: t, dir: dir, asPG: os.Geteuid() == 0}
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate", "-w")
		_ = os.RemoveAll(dir)
	})
	if c.asPG { // initdb refuses to run as root; the server must own its directory
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and no postgres OS user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", dir, err)
		}
	}
	if out, err := c.command(filepath.Join(pgBinDir, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir + "'\nmax_connections = 200\n" +
		"fsync = on\nsynchronous_commit = on\nshared_buffers = 64MB\n"
	if err := appendFile(filepath.Join(dir, "data", "postgresql.conf"), conf); err != nil {
		t.Fatal(err)
	}
	// The port is free when FreePort returns, not necessarily when the
	// server binds it: a failed start tries another.
	for attempt := 1; ; attempt++ {
		c.port = testutil.FreePort(t)
		err := c.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("PostgreSQL on %d: %v; trying another port", c.port, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []struct{ db, sql string }{
		{"postgres", "CREATE DATABASE spark"},
		{"spark", "CREATE EXTENSION postgis"},
		{"spark", "CREATE EXTENSION btree_gist"},
	} {
		conn, err := pgx.Connect(ctx, c.url(q.db))
		if err != nil {
			t.Fatalf("connect to the drill's PostgreSQL: %v", err)
		}
		_, err = conn.Exec(ctx, q.sql)
		conn.Close(ctx)
		if err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return c
}

// URL is the spark database's URL.
func (c *pgCluster) URL() string { return c.url("spark") }

func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start() error {
	return c.pgctl("start", "-w", "-t", "120", "-l", filepath.Join(c.dir, "server.log"),
		"-o", "-p "+strconv.Itoa(c.port))
}

// Start starts the stopped server again on its port.
func (c *pgCluster) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatal(err)
	}
}

// Crash stops the server as a power cut would: no checkpoint, no goodbye
// to clients (pg_ctl stop -m immediate); the next start runs crash
// recovery from the WAL.
func (c *pgCluster) Crash() {
	c.t.Helper()
	if err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *pgCluster) pgctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(c.dir, "data")}, args...)
	out, err := c.command(filepath.Join(pgBinDir, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("pg_ctl %s: %v\n%s\nserver log (tail):\n%s", args[2], err, out, testutil.Tail(string(log), 2000))
	}
	return nil
}

// command runs a PostgreSQL binary, as the postgres OS user when we are root.
func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	if c.asPG {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}
