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
