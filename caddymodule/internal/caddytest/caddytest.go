// Package caddytest runs the plugins' tests against a real Caddy in the test
// process: it adapts and loads Caddyfiles on free ports (trying other ports
// when one was taken meanwhile), stops Caddy when the test ends, and sends
// requests exactly as written (no cleaning of // or ..) on connections of
// their own. It is for tests only.
package caddytest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter

	"github.com/spark-edge/spark/internal/testutil"
)

// GlobalOptions is the global options block of the plugins' test
// Caddyfiles: the admin endpoint on 127.0.0.1:adminPort, no persisted
// config, no automatic HTTPS, a grace period of 2s on reloads and stops,
// metrics, errors-only logs; extra goes inside it.
func GlobalOptions(adminPort int, extra string) string {
	return `{
	admin 127.0.0.1:` + strconv.Itoa(adminPort) + `
	persist_config off
	auto_https off
	grace_period 2s
	metrics
	log {
		level ERROR
	}
` + extra + `}
`
}

// Adapt turns a Caddyfile into Caddy's JSON config, failing the test when it
// does not adapt; warnings are logged.
func Adapt(t testing.TB, text string) []byte {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	cfg, warnings, err := adapter.Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt Caddyfile: %v\n%s", err, text)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w.String())
	}
	return cfg
}

// TryLoad adapts text and loads it into the process's Caddy, returning
// caddy.Load's error (a reload when a config is already running).
func TryLoad(t testing.TB, text string) error {
	t.Helper()
	return caddy.Load(Adapt(t, text), true)
}

// Load is TryLoad, failing the test on an error.
func Load(t testing.TB, text string) {
	t.Helper()
	if err := TryLoad(t, text); err != nil {
		t.Fatalf("caddy.Load: %v\n%s", err, text)
	}
}

// LoadOnFreePorts loads the Caddyfile render makes for n free ports, and
// stops Caddy when the test ends. A port another socket took between
// picking and binding fails the load with EADDRINUSE: then it tries new
// ports, a few times. It returns the ports.
func LoadOnFreePorts(t testing.TB, n int, render func(ports []int) string) []int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := testutil.FreePorts(t, n)
		text := render(ports)
		err := TryLoad(t, text)
		if err == nil {
			t.Cleanup(func() {
				if err := caddy.Stop(); err != nil {
					t.Errorf("caddy.Stop: %v", err)
				}
			})
			return ports
		}
		if attempt < 5 && AddrInUse(err) {
			t.Logf("caddy.Load on ports %v: %v; trying other ports", ports, err)
			continue
		}
		t.Fatalf("caddy.Load: %v\n%s", err, text)
	}
}

// AddrInUse reports whether err is a bind that found its address taken.
func AddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || (err != nil && strings.Contains(err.Error(), "address already in use"))
}

// Response is a response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Bearer returns the header pair of Exchange that sends the bearer token
// tok: none when tok is empty.
func Bearer(tok string) []string {
	if tok == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + tok}
}

// Exchange sends one HTTP/1.1 request to addr (host:port) on a connection of
// its own: method and target exactly as given, header pairs in order (a
// repeated name adds another field), body if not empty. It reads the whole
// response.
func Exchange(addr, method, target, body string, header ...string) (*Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: string(rb)}, nil
}
