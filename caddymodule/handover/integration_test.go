package handover

import (
	"fmt"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// siteConfig is a Caddyfile of a site answering name on port, with spark_handover or
// without.
func siteConfig(port int, name string, handover bool) string {
	global := "admin off"
	if handover {
		global += "\n\tservers {\n\t\tlistener_wrappers {\n\t\t\tspark_handover\n\t\t}\n\t}"
	}
	return fmt.Sprintf("{\n\t%s\n}\nhttp://:%d {\n\tbind 127.0.0.1\n\trespond %q\n}\n", global, port, name)
}

// A real Caddy reloaded 10 times while a client holds one keep-alive
// connection: with spark_handover every request on it is answered, by the
// config loaded last; without it the first reload closes the connection
// under the client's next request (the connection errors wrk counted).
// Each reload waits for the old listener to close (caddytest.Reload): until
// then the old server may still answer a request with the old config,
// which the handover never promised to prevent.
func TestReloadKeepsKeepAliveConnections(t *testing.T) {
	var port int
	caddytest.LoadOnFreePorts(t, 1, func(ports []int) string {
		port = ports[0]
		return siteConfig(port, "config-0", true)
	})
	c, br := dial(t, fmt.Sprintf("127.0.0.1:%d", port))
	if body, _ := get(t, c, br); body != "config-0" {
		t.Fatalf("first answer %q", body)
	}
	for i := 1; i <= 10; i++ {
		name := fmt.Sprintf("config-%d", i)
		caddytest.Reload(t, siteConfig(port, name, true))
		if body, closing := get(t, c, br); body != name || closing {
			t.Fatalf("after reload %d: %q (closing %v), want %q on the kept connection", i, body, closing, name)
		}
	}

	// Without the wrapper, a reload closes the connection under the
	// client's next request.
	caddytest.Reload(t, siteConfig(port, "plain-1", false))
	c2, br2 := dial(t, fmt.Sprintf("127.0.0.1:%d", port))
	if body, _ := get(t, c2, br2); body != "plain-1" {
		t.Fatalf("answer %q", body)
	}
	caddytest.Reload(t, siteConfig(port, "plain-2", false))
	if _, err := fmt.Fprint(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
		if _, err := br2.ReadByte(); err == nil {
			t.Fatal("without spark_handover the connection survived the reload: the test no longer shows the failure it guards against")
		}
	}
}
