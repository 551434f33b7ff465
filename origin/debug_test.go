package origin

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestDebugProfilesOnLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "example.com:0", "127.0.0.1"} {
		if _, stop, err := serveDebug(addr, log); err == nil {
			stop()
			t.Errorf("debug listen %q accepted, want refused (loopback only, host:port)", addr)
		}
	}
	bound, stop, err := serveDebug("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + bound + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("profile: %d %.200s", resp.StatusCode, body)
	}
}
