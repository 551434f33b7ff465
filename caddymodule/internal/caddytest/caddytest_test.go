package caddytest

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestLoadAndExchange loads a Caddyfile on free ports and sends a request
// whose target Go's client would clean.
func TestLoadAndExchange(t *testing.T) {
	ports := LoadOnFreePorts(t, 2, func(p []int) string {
		return GlobalOptions(p[0], "") + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	respond "{http.request.orig_uri}" 200
}`, p[1])
	})
	res, err := Exchange("127.0.0.1:"+strconv.Itoa(ports[1]), http.MethodGet, "//a/../b", "", "X-Test", "1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || res.Body != "//a/../b" {
		t.Fatalf("got %d %q", res.Status, res.Body)
	}
}

// TestAddrInUse recognizes a failed bind.
func TestAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = net.Listen("tcp", l.Addr().String())
	if !AddrInUse(err) {
		t.Fatalf("AddrInUse(%v) = false", err)
	}
	if AddrInUse(nil) || AddrInUse(fmt.Errorf("other")) {
		t.Fatal("AddrInUse true for other errors")
	}
}

// TestReloadWaitsForTheOldSockets: once Reload returns, the old config's
// listening socket is gone and every new connection reaches the new
// config.
func TestReloadWaitsForTheOldSockets(t *testing.T) {
	site := func(admin, port int, marker string) string {
		return GlobalOptions(admin, "") + fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1\n\trespond %q 200\n}\n", port, marker)
	}
	ports := LoadOnFreePorts(t, 2, func(p []int) string { return site(p[0], p[1], "config-0") })
	addr := "127.0.0.1:" + strconv.Itoa(ports[1])
	for i := 1; i <= 5; i++ {
		marker := fmt.Sprintf("config-%d", i)
		Reload(t, site(ports[0], ports[1], marker))
		listening, err := listeningSockets()
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range ports {
			if n := listening[port]; n != 1 {
				t.Fatalf("after reload %d: %d sockets listen on %d, want 1", i, n, port)
			}
		}
		for j := range 10 {
			res, err := Exchange(addr, http.MethodGet, "/", "")
			if err != nil {
				t.Fatalf("after reload %d, request %d: %v", i, j, err)
			}
			if res.Body != marker {
				t.Fatalf("after reload %d, request %d answered %q, want %q", i, j, res.Body, marker)
			}
		}
	}
}

// TestListeningSockets counts a socket while it listens.
func TestListeningSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if got, err := listeningSockets(); err != nil || got[port] != 1 {
		t.Fatalf("listening: %d, %v; want 1", got[port], err)
	}
	_ = l.Close()
	if got, err := listeningSockets(); err != nil || got[port] != 0 {
		t.Fatalf("closed: %d, %v; want 0", got[port], err)
	}
}
