// Package caddytest runs the plugins' tests against a real Caddy in the test
// process: it adapts and loads Caddyfiles on free ports (trying other ports
// when one was taken meanwhile), stops Caddy when the test ends, and sends
// requests exactly as written (no cleaning of // or ..) on connections of
// their own. It is for tests only.
package caddytest

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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

// Reload loads text in place of the running config, as `caddy reload`
// does, and returns once the replaced config's listening sockets on the
// ports text listens on (its servers' and its admin endpoint's) are
// closed.
//
// Caddy returns from a reload before the old servers stop: each old
// server's Shutdown runs in a goroutine, and the new listener shares the
// port with SO_REUSEPORT, so for a moment a new connection may still reach
// an old server and be answered with the old config (or reset, when it was
// queued on the old socket as it closed), and a kept-alive connection's
// next request may still be read by it. Once the old socket is closed,
// net/http has marked its server as shutting down (it does that first): a
// new connection reaches the new config, and an old server answers no
// further request. Caddy's count of a listener's users drops before the
// socket is closed (Go closes a listening socket only once the goroutine
// blocked in its Accept has woken), so Reload waits for both that count
// and the kernel's list of listening sockets (/proc/net/tcp and tcp6).
//
// Use Load where the test asserts what the product guarantees from the
// moment the reload returns (spark_auth's retired keys), Reload where it
// asserts the new config's behaviour.
func Reload(t testing.TB, text string) {
	t.Helper()
	cfg := Adapt(t, text)
	want, err := listenerCounts(cfg)
	if err != nil {
		t.Fatalf("listen addresses of the config: %v\n%s", err, text)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("caddy.Load: %v\n%s", err, text)
	}
	testutil.Eventually(t, 30*time.Second, "the replaced config's listening sockets to close", func() bool {
		perPort := make(map[int]int)
		for k, n := range want {
			if caddy.ListenerUsage(k.network, k.addr) > n {
				return false
			}
			perPort[k.port] += n
		}
		listening, err := listeningSockets()
		if err != nil { // no kernel tables to read: Caddy's count only
			return true
		}
		for port, n := range perPort {
			if listening[port] > n {
				return false
			}
		}
		return true
	})
}

// listenerKey names a listening socket as Caddy's listener pool counts
// it (caddy.ListenerUsage).
type listenerKey struct {
	network, addr string
	port          int
}

// listenerCounts returns how many listeners the JSON config cfg opens on
// each stream socket: its HTTP servers' and its admin endpoint's.
func listenerCounts(cfg []byte) (map[listenerKey]int, error) {
	var c struct {
		Admin *struct {
			Disabled bool   `json:"disabled"`
			Listen   string `json:"listen"`
		} `json:"admin"`
		Apps struct {
			HTTP *struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	var addrs []string
	switch {
	case c.Admin == nil:
		addrs = append(addrs, caddy.DefaultAdminListen)
	case !c.Admin.Disabled:
		addrs = append(addrs, cmp.Or(c.Admin.Listen, caddy.DefaultAdminListen))
	}
	if c.Apps.HTTP != nil {
		for _, srv := range c.Apps.HTTP.Servers {
			addrs = append(addrs, srv.Listen...)
		}
	}
	counts := make(map[listenerKey]int)
	for _, a := range addrs {
		na, err := caddy.ParseNetworkAddress(a)
		if err != nil {
			return nil, fmt.Errorf("parse listen address %q: %w", a, err)
		}
		for _, one := range na.Expand() {
			counts[listenerKey{one.Network, one.JoinHostPort(0), int(one.StartPort)}]++
		}
	}
	return counts, nil
}

// listeningSockets counts the TCP sockets listening on each port (any
// address, IPv4 and IPv6) in the kernel's tables; an error where there
// are none to read (not Linux).
func listeningSockets() (map[int]int, error) {
	counts := make(map[int]int)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		for line := range bytes.Lines(b) {
			// sl local_address rem_address st ...; local_address is
			// hex address:hex port, st 0A is LISTEN (no other field
			// is that token; a busy machine lists thousands of
			// sockets, so the others are skipped unsplit).
			if !bytes.Contains(line, []byte(" 0A ")) {
				continue
			}
			f := strings.Fields(string(line))
			if len(f) < 4 || f[3] != "0A" {
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if port, err := strconv.ParseUint(f[1][i+1:], 16, 16); err == nil {
				counts[int(port)]++
			}
		}
	}
	return counts, nil
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
