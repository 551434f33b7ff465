package image

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// connKey is the request context key of the client connection.
type connKey struct{}

// keepConn registers, on the HTTP server being provisioned, a connection
// context function that stores the connection in every request's context
// (Caddy's documented way: its own ConnCtxKey is no longer set).
func keepConn(ctx caddy.Context) {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return
	}
	srv.RegisterConnContext(func(c context.Context, conn net.Conn) context.Context {
		if c.Value(connKey{}) != nil {
			return c
		}
		return context.WithValue(c, connKey{}, conn)
	})
}

// measuredRTT is the connection's TCP round-trip time (TCP_INFO), 0 when
// unknown.
func measuredRTT(r *http.Request) time.Duration {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if c == nil {
		return 0
	}
	return tcpRTT(c)
}
