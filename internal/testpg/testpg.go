// Package testpg runs PostgreSQL servers of a test's own: a primary made by
// initdb in a temporary directory, listening on a free port of 127.0.0.1
// with wal_level=replica, and streaming replicas cloned from it with
// pg_basebackup -R. Every server is stopped and its directory removed at
// the test's cleanup. The servers run the machine's PostgreSQL 15 binaries
// (pg_config --bindir), so the PostGIS installed for them is available. As
// root, the servers run as the postgres OS user (PostgreSQL refuses root).
//
// A missing PostgreSQL fails the test saying why; it never skips.
package testpg

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/internal/testutil"
)

// startTimeout bounds pg_ctl start and stop on a loaded machine.
const startTimeout = 120 * time.Second

// Server is one PostgreSQL server of the test: its data directory, port
// and log file.
type Server struct {
	t       testing.TB
	bin     string              // PostgreSQL's bindir
	cred    *syscall.Credential // the postgres OS user when run as root, else nil
	owner   [2]int              // uid, gid owning the files (-1 when not root)
	Dir     string              // data directory
	Port    int                 // on 127.0.0.1
	Log     string              // server log
	running bool
}

// Settings are postgresql.conf lines added to a primary's configuration
// (for example "archive_mode = on"); they are copied into its replicas.
type Settings []string

// StartPrimary runs initdb in a fresh temporary directory, configures a
// server for streaming replication on a free port, starts it and returns
// it; extra lines are appended to postgresql.conf.
func StartPrimary(t testing.TB, extra Settings) *Server {
	t.Helper()
	s := newServer(t, "primary")
	out, err := s.run("initdb", "-D", s.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	if err != nil {
		t.Fatalf("testpg: initdb %s: %v\n%s", s.Dir, err, out)
	}
	conf := append(Settings{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = ''",
		"wal_level = replica",
		"max_wal_senders = 8",
		"max_replication_slots = 8",
		"hot_standby = on",
		"wal_keep_size = '256MB'",
		"shared_buffers = '32MB'",
		"max_connections = 60",
		"fsync = off",
		"full_page_writes = off",
	}, extra...)
	s.configure(conf)
	s.Start()
	return s
}

// StartReplica clones p with pg_basebackup -R (streaming the WAL it needs,
// then streaming from p) into a fresh directory, gives it a port of its
// own, starts it as a hot standby and returns it.
func (p *Server) StartReplica(t testing.TB) *Server {
	t.Helper()
	r := newServer(t, "replica")
	if err := os.Remove(r.Dir); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	out, err := r.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres",
		"-D", r.Dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if err != nil {
		t.Fatalf("testpg: pg_basebackup from %s: %v\n%s", p.Dir, err, out)
	}
	r.configure(nil)
	r.Start()
	return r
}

func newServer(t testing.TB, name string) *Server {
	t.Helper()
	bin := bindir(t)
	base, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		t.Fatalf("testpg: temp dir: %v", err)
	}
	s := &Server{t: t, bin: bin, owner: [2]int{-1, -1}, Dir: filepath.Join(base, name),
		Log: filepath.Join(base, name+".log"), Port: testutil.FreePort(t)}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatalf("testpg: %v", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("testpg: running as root needs the postgres OS user to run PostgreSQL as (install postgresql-15): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		s.owner = [2]int{uid, gid}
		for _, d := range []string{base, s.Dir} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatalf("testpg: chown %s: %v", d, err)
			}
		}
	}
	t.Cleanup(func() {
		s.stop("immediate")
		if !t.Failed() {
			_ = os.RemoveAll(base)
			return
		}
		t.Logf("testpg: %s kept for inspection: %s (log %s)", name, s.Dir, s.Log)
	})
	return s
}

// bindir is PostgreSQL's program directory (pg_config --bindir), where
// initdb, pg_ctl and pg_basebackup of one version live together.
func bindir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Fatalf("testpg: pg_config --bindir: %v (install postgresql-15 and postgresql-server-dev-15 or run scripts/test-deps.sh)", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
		t.Fatalf("testpg: no initdb in %s: %v", dir, err)
	}
	return dir
}

// run runs one of PostgreSQL's programs as the server's OS user.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Dir = "/"
	}
	return cmd.CombinedOutput()
}

// configure appends lines to postgresql.conf and sets the port (later
// lines win, so a replica's copy of its primary's settings is overridden).
func (s *Server) configure(lines Settings) {
	s.t.Helper()
	path := filepath.Join(s.Dir, "postgresql.conf")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		s.t.Fatalf("testpg: open %s: %v", path, err)
	}
	defer f.Close()
	all := append(Settings{"", "# testpg"}, lines...)
	all = append(all, fmt.Sprintf("port = %d", s.Port), "")
	if _, err := f.WriteString(strings.Join(all, "\n")); err != nil {
		s.t.Fatalf("testpg: write %s: %v", path, err)
	}
}

// Start starts the server (again) and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	if s.owner[0] >= 0 {
		// The log file sits beside the data directory, writable by pg_ctl.
		f, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			_ = os.Chown(s.Log, s.owner[0], s.owner[1])
		}
	}
	out, err := s.run("pg_ctl", "-D", s.Dir, "-l", s.Log, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())), "start")
	if err != nil {
		log, _ := os.ReadFile(s.Log)
		s.t.Fatalf("testpg: start %s: %v\n%s\nserver log:\n%s", s.Dir, err, out, log)
	}
	s.running = true
}

// Stop stops the server (fast shutdown: sessions are ended, and a primary
// waits for its replicas to receive the shutdown checkpoint).
func (s *Server) Stop() {
	s.t.Helper()
	if out, err := s.stop("fast"); err != nil {
		s.t.Fatalf("testpg: stop %s: %v\n%s", s.Dir, err, out)
	}
}

func (s *Server) stop(mode string) ([]byte, error) {
	if !s.running {
		return nil, nil
	}
	out, err := s.run("pg_ctl", "-D", s.Dir, "-m", mode, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())), "stop")
	if err == nil {
		s.running = false
	}
	return out, err
}

// URL is the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(s.Port),
		Path: "/" + db, RawQuery: "sslmode=disable&connect_timeout=5"}
	return u.String()
}

// Connect opens one connection to database db, closed at cleanup.
func (s *Server) Connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		t.Fatalf("testpg: connect to %s: %v", s.URL(db), err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// CreateDatabase creates database name on a primary with the postgis and
// btree_gist extensions the origin's schema needs.
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := s.Connect(t, "postgres")
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testpg: create database %s: %v", name, err)
	}
	d := s.Connect(t, name)
	for _, ext := range []string{"postgis", "btree_gist"} {
		if _, err := d.Exec(ctx, "CREATE EXTENSION "+ext); err != nil {
			t.Fatalf("testpg: create extension %s in %s (is postgresql-15-postgis-3 installed?): %v", ext, name, err)
		}
	}
}

// WaitReplayed waits until replica r has replayed everything its primary p
// had written when it was called: what was committed on p is then visible
// on r.
func (p *Server) WaitReplayed(t testing.TB, r *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var lsn string
	if err := p.Connect(t, "postgres").QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatalf("testpg: primary's WAL position: %v", err)
	}
	rc := r.Connect(t, "postgres")
	for {
		var done bool
		err := rc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&done)
		switch {
		case err != nil:
			t.Fatalf("testpg: replica's replay position: %v", err)
		case done:
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testpg: replica did not replay up to %s within %s (log %s)", lsn, startTimeout, r.Log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PauseReplay stops replica r applying WAL (it keeps receiving it) and
// waits until replay is paused: r lags from then on.
func (r *Server) PauseReplay(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := r.Connect(t, "postgres")
	if _, err := c.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatalf("testpg: pause replay: %v", err)
	}
	for {
		var state string
		if err := c.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			t.Fatalf("testpg: replay pause state: %v", err)
		}
		if state == "paused" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testpg: replay not paused within %s (state %s)", startTimeout, state)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ResumeReplay lets replica r apply WAL again.
func (r *Server) ResumeReplay(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.Connect(t, "postgres").Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatalf("testpg: resume replay: %v", err)
	}
}
