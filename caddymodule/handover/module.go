// Package handover is the Caddy listener wrapper spark_handover: across a
// config reload (spark reload), a keep-alive connection the old server
// would close while idle is passed to the new server instead, so a request
// the client sent on it at that moment is answered rather than reset. The
// logic is Handover (handover.go); this file is its Caddy surface.
//
// Use it for every server in the Caddyfile's global options:
//
//	servers {
//		listener_wrappers {
//			spark_handover
//		}
//	}
package handover

import (
	"net"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() { caddy.RegisterModule(Wrapper{}) }

// handovers holds one Handover per listening address, shared by the old
// and the new config during a reload.
var handovers = caddy.NewUsagePool()

// Wrapper is the spark_handover listener wrapper. It has no options.
type Wrapper struct {
	held *held
}

// held is what a config holds in the pool.
type held struct {
	mu   sync.Mutex
	keys []string
}

// CaddyModule returns the Caddy module information.
func (Wrapper) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.listeners.spark_handover", New: func() caddy.Module { return &Wrapper{held: new(held)} }}
}

// WrapListener wraps ln with the Handover of its address.
func (w *Wrapper) WrapListener(ln net.Listener) net.Listener {
	key := ln.Addr().Network() + "/" + ln.Addr().String()
	v, _, _ := handovers.LoadOrNew(key, func() (caddy.Destructor, error) { return New(), nil })
	w.held.mu.Lock()
	w.held.keys = append(w.held.keys, key)
	w.held.mu.Unlock()
	return v.(*Handover).Wrap(ln)
}

// Cleanup releases this config's hold on the handovers.
func (w *Wrapper) Cleanup() error {
	w.held.mu.Lock()
	defer w.held.mu.Unlock()
	for _, k := range w.held.keys {
		_, _ = handovers.Delete(k)
	}
	w.held.keys = nil
	return nil
}

// UnmarshalCaddyfile reads `spark_handover` (no arguments, no block).
func (w *Wrapper) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the wrapper's name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("spark_handover takes no options")
	}
	return nil
}

// Interface guards.
var (
	_ caddy.ListenerWrapper = (*Wrapper)(nil)
	_ caddy.CleanerUpper    = (*Wrapper)(nil)
	_ caddyfile.Unmarshaler = (*Wrapper)(nil)
)
