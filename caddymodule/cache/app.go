package cache

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/caddymodule/internal/tagpurge"
)

// PurgeApp is the Caddy app spark_cache (tagpurge.AppID): the config's
// tag purges for other plugins. Every spark_cache handler registers its
// store with it at Provision; PurgeTags purges each store once, as an
// origin's Spark-Purge seen by spark_cache would. It has no settings: the
// first module that asks for it (ctx.App) provisions it empty, and a
// config without spark_cache handlers purges nothing. It is per config,
// so a reload starts a new one with the new config's stores.
type PurgeApp struct {
	mu     sync.Mutex
	stores []*pooled // no duplicates
}

// CaddyModule returns the Caddy module information.
func (*PurgeApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  tagpurge.AppID,
		New: func() caddy.Module { return new(PurgeApp) },
	}
}

// Start implements caddy.App; the app has nothing to run.
func (*PurgeApp) Start() error { return nil }

// Stop implements caddy.App.
func (*PurgeApp) Stop() error { return nil }

// register adds a handler's store (once, however many handlers share it).
func (a *PurgeApp) register(p *pooled) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.stores {
		if q == p {
			return
		}
	}
	a.stores = append(a.stores, p)
}

// PurgeTags removes every entry tagged with one of tags from each store of
// the config: L1, hot copies (by the store's purge generation), L2 and, by
// the purge bus, the other edges.
func (a *PurgeApp) PurgeTags(ctx context.Context, tags ...string) error {
	if err := tagpurge.CheckTags(tags); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	a.mu.Lock()
	stores := a.stores
	a.mu.Unlock()
	for _, p := range stores {
		p.metrics.purged(p.store.PurgeTags(ctx, tags...))
	}
	return nil
}

// registerPurges registers h's store with the config's PurgeApp.
func (h *Handler) registerPurges(ctx caddy.Context) error {
	app, err := ctx.App(tagpurge.AppID)
	if err != nil {
		return err
	}
	app.(*PurgeApp).register(h.state)
	return nil
}

// Interface guards
var (
	_ caddy.App       = (*PurgeApp)(nil)
	_ tagpurge.Purger = (*PurgeApp)(nil)
)
