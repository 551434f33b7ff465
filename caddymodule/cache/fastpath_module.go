package cache

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

func init() {
	caddy.RegisterModule(FastPath{})
}

// FastPathEnv is the environment variable that turns every spark_fastpath
// off when set to "off", whatever the config says.
const FastPathEnv = "SPARK_FASTPATH"

// DefaultFastPathIdle is how long a connection the fast path is answering
// may wait for its next request (Caddy's default idle timeout).
const DefaultFastPathIdle = 5 * time.Minute

// FastPath is the listener wrapper caddy.listeners.spark_fastpath: it
// answers fresh public L1 hits of a spark_cache on plain HTTP/1.1
// connections before Caddy's pipeline, and hands every other request,
// byte for byte, to Caddy. Configure it in the global options:
//
//	servers {
//		listener_wrappers {
//			spark_fastpath {
//				cache default
//				paths /static/*
//			}
//		}
//	}
//
// Paths must be ones whose route runs spark_cache before any handler that
// checks, changes or logs the request or changes the response (no
// authentication, header rewriting or access logs): the fast path answers
// them as spark_cache alone would. It stands aside on TLS connections and
// while a server using the cache writes access logs.
type FastPath struct {
	// Cache is the name of the spark_cache whose hits are answered.
	// Default: "default".
	Cache string `json:"cache,omitempty"`
	// Paths are the request paths answered: exact, or a prefix ending in
	// '*'. Required.
	Paths []string `json:"paths,omitempty"`
	// IdleTimeout is how long a connection may wait for its next request
	// after a fast-path answer. Default 5m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// DisableTakeBack leaves a connection to Caddy for good after the
	// first request the fast path hands it. By default the fast path
	// answers the connection again once Caddy has answered a plain
	// request (GET or HEAD without a body) on it.
	DisableTakeBack bool `json:"disable_take_back,omitempty"`

	f   *fastPath
	off bool
}

// CaddyModule returns the Caddy module information.
func (FastPath) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.listeners.spark_fastpath",
		New: func() caddy.Module { return new(FastPath) },
	}
}

// Provision sets the defaults and reads SPARK_FASTPATH.
func (fp *FastPath) Provision(ctx caddy.Context) error {
	if fp.Cache == "" {
		fp.Cache = "default"
	}
	if fp.IdleTimeout == 0 {
		fp.IdleTimeout = caddy.Duration(DefaultFastPathIdle)
	}
	fp.off = os.Getenv(FastPathEnv) == "off"
	if fp.off {
		ctx.Logger().Info("spark_fastpath is off (" + FastPathEnv + "=off)")
	}
	fp.f = newFastPath(fastPathOptions{
		name:     fp.Cache,
		paths:    fp.Paths,
		idle:     time.Duration(fp.IdleTimeout),
		takeBack: !fp.DisableTakeBack,
	})
	return nil
}

// Validate checks the paths.
func (fp *FastPath) Validate() error {
	if len(fp.Paths) == 0 {
		return fmt.Errorf("spark_fastpath: paths: at least one path is required")
	}
	for _, p := range fp.Paths {
		if !strings.HasPrefix(p, "/") || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return fmt.Errorf("spark_fastpath: path %q: want an absolute path, or a prefix ending in '*'", p)
		}
	}
	if fp.IdleTimeout < 0 {
		return fmt.Errorf("spark_fastpath: idle_timeout %s is negative", time.Duration(fp.IdleTimeout))
	}
	return nil
}

// WrapListener wraps l unless the fast path is off.
func (fp *FastPath) WrapListener(l net.Listener) net.Listener {
	if fp.off {
		return l
	}
	return &fastListener{Listener: l, f: fp.f}
}

// UnmarshalCaddyfile sets up the fast path from Caddyfile tokens:
//
//	spark_fastpath {
//		cache <name>
//		paths <path...>
//		idle_timeout <duration>
//		take_back on|off
//	}
func (fp *FastPath) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the wrapper's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "cache":
			if !d.AllArgs(&fp.Cache) {
				return d.ArgErr()
			}
		case "paths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			fp.Paths = append(fp.Paths, args...)
		case "idle_timeout":
			if err := caddyargs.Read(d, 1, caddyargs.Duration(&fp.IdleTimeout, time.Second, duration.Max)); err != nil {
				return err
			}
		case "take_back":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			switch v {
			case "on":
				fp.DisableTakeBack = false
			case "off":
				fp.DisableTakeBack = true
			default:
				return d.Errf("spark_fastpath: take_back %q: want on or off", v)
			}
		default:
			return d.Errf("unrecognized spark_fastpath option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*FastPath)(nil)
	_ caddy.Validator       = (*FastPath)(nil)
	_ caddy.ListenerWrapper = (*FastPath)(nil)
	_ caddyfile.Unmarshaler = (*FastPath)(nil)
)
