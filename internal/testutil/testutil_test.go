package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFreePortsDistinctAndBindable(t *testing.T) {
	ports := FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d returned twice: %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", FreeAddr(t))
		if err != nil {
			t.Fatalf("bind a free address: %v", err)
		}
		l.Close()
	}
}

func TestEventually(t *testing.T) {
	start := time.Now()
	n := 0
	Eventually(t, 5*time.Second, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 || time.Since(start) > 4*time.Second {
		t.Fatalf("Eventually polled %d times in %s", n, time.Since(start))
	}
}

func TestWaitHTTPAnyStatus(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	WaitHTTP(t, srv.URL, 5*time.Second, nil)
}

func TestProcessOutputAndExit(t *testing.T) {
	p := StartProcess(t, []string{"GREETING=hello"}, "/bin/sh", "-c", `echo "$GREETING from sh"; exit 3`)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit")
	}
	if p.Err() == nil || !strings.Contains(p.Output(), "hello from sh") {
		t.Fatalf("err %v output %q", p.Err(), p.Output())
	}
}

func TestProcessStop(t *testing.T) {
	p := StartProcess(t, nil, "/bin/sleep", "60")
	start := time.Now()
	p.Stop()
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Stop took %s: SIGTERM not delivered", time.Since(start))
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
}

func TestTail(t *testing.T) {
	if got := Tail("abcdef", 3); got != "…def" {
		t.Fatalf("Tail = %q", got)
	}
	if got := Tail("ab", 3); got != "ab" {
		t.Fatalf("Tail = %q", got)
	}
}

func TestModuleRootHoldsTheSparkModule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/spark-edge/spark\n") {
		t.Fatalf("ModuleRoot's go.mod is not the spark module's: %.60q", b)
	}
}
