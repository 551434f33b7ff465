// Package testutil holds what the tests of several packages need alike: free
// ports, waiting for a condition or for a server to answer, and processes
// started for a test and stopped with it. It is for tests only.
package testutil

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePorts returns n distinct TCP ports free on 127.0.0.1. They are held
// open until all n are picked, so no two are the same; they are free now,
// not when the caller binds them, so a caller that can should retry a bind
// that fails with EADDRINUSE on other ports.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// FreePort returns one TCP port free on 127.0.0.1 (see FreePorts).
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreeAddr returns "127.0.0.1:port" for a free port (see FreePorts).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// Eventually polls cond every few milliseconds until it holds, and fails the
// test when timeout passes first. Timeouts are liveness bounds: a loaded CI
// machine may need far longer than an idle one.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitHTTP waits until a GET of url gets any HTTP answer (whatever its
// status) and fails the test after timeout. exited, when not nil, ends the
// wait early: the server's process has ended.
func WaitHTTP(t testing.TB, url string, timeout time.Duration, exited <-chan struct{}) {
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
		case <-exited:
			t.Fatalf("waiting for %s: the process exited", url)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering after %s: %v", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Process is a command started for a test, stopped when the test ends.
type Process struct {
	t       testing.TB
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // set before exited is closed
	stop    sync.Once
}

// StartProcess starts name with args and the environment of the test
// process plus env, its output going to a file in a test temporary
// directory. When the test ends the process gets SIGTERM, then SIGKILL
// after 10 s; if the test failed, the tail of its output is logged.
func StartProcess(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create log for %s: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{t: t, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", filepath.Base(name), Tail(p.Output(), 4000))
		}
	})
	return p
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (p *Process) Stop() {
	p.stop.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Kill ends the process at once with SIGKILL and waits for it.
func (p *Process) Kill() {
	p.stop.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended; valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is what the process has written so far.
func (p *Process) Output() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(output unreadable: " + err.Error() + ")"
	}
	return string(b)
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
