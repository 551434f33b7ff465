// Package gc is the Caddy app spark_gc: it paces the edge's garbage
// collector by the memory a collection scans (internal/gcpace), so the
// L1 cache's preallocated, pointer-free arrays do not set how much garbage
// piles up between collections. It is the global option
//
//	{
//		spark_gc {
//			percent      100    # GOGC applied to the scannable memory
//			min_headroom 128MiB # least allocation between collections
//		}
//	}
//
// It stands aside (stock GOGC pacing) when GOGC or GOMEMLIMIT is set in the
// environment: the operator's choice wins. Without the option the runtime
// paces as usual.
package gc

import (
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/internal/gcpace"
)

// AppID is the app's name and its global option's.
const AppID = "spark_gc"

func init() {
	caddy.RegisterModule(App{})
	httpcaddyfile.RegisterGlobalOption(AppID, parseOption)
}

// pacers holds the process's one pacer, shared by the old and the new
// config during a reload.
var pacers = caddy.NewUsagePool()

// App is the spark_gc app.
type App struct {
	// Percent is GOGC applied to the scannable memory: the next collection
	// comes after this percentage of the heap's scannable part, the stacks
	// and the globals has been allocated. Default 100.
	Percent int `json:"percent,omitempty"`
	// MinHeadroom is the least allocation between two collections, in
	// bytes. Default 128 MiB.
	MinHeadroom int64 `json:"min_headroom,omitempty"`

	logger *zap.Logger
	held   bool
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: AppID, New: func() caddy.Module { return new(App) }}
}

// Provision takes the logger.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	return nil
}

// Validate checks the options.
func (a *App) Validate() error {
	return a.options().Validate()
}

func (a *App) options() gcpace.Options {
	return gcpace.Options{Percent: a.Percent, MinHeadroom: a.MinHeadroom}
}

// pooledPacer is the pacer in the usage pool.
type pooledPacer struct{ *gcpace.Pacer }

// Destruct stops the pacer when no config uses it any more.
func (p pooledPacer) Destruct() error {
	p.Stop()
	return nil
}

// Start starts pacing (or gives the running pacer this config's options).
func (a *App) Start() error {
	if why := gcpace.StandsAside(os.Getenv); why != "" {
		a.logger.Info("garbage collector paced by the runtime", zap.String("why", why))
		return nil
	}
	v, loaded, err := pacers.LoadOrNew(AppID, func() (caddy.Destructor, error) {
		return pooledPacer{gcpace.Start(a.options())}, nil
	})
	if err != nil {
		return fmt.Errorf("start the GC pacer: %w", err)
	}
	a.held = true
	p := v.(pooledPacer)
	if loaded {
		p.SetOptions(a.options())
	}
	o := a.options().WithDefaults()
	a.logger.Info("garbage collector paced by the scannable memory",
		zap.Int("percent", o.Percent), zap.Int64("min_headroom", o.MinHeadroom), zap.Int("gc_percent_now", p.Percent()))
	return nil
}

// Stop releases this config's hold on the pacer.
func (a *App) Stop() error {
	if a.held {
		a.held = false
		if _, err := pacers.Delete(AppID); err != nil {
			return fmt.Errorf("stop the GC pacer: %w", err)
		}
	}
	return nil
}

// parseOption reads the global option into the app.
func parseOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Errf("%s is given twice", AppID)
	}
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: AppID, Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile reads
//
//	spark_gc {
//		percent      <1…>
//		min_headroom <size>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, func(d *caddyfile.Dispenser) error {
		switch d.Val() {
		case "percent":
			return caddyargs.Read(d, 1, caddyargs.Int(&a.Percent, 1))
		case "min_headroom":
			return caddyargs.Read(d, 1, caddyargs.Size(&a.MinHeadroom, 1<<20, 1<<40))
		default:
			return d.Errf("unrecognized %s option %q (percent, min_headroom)", AppID, d.Val())
		}
	})
}

// Interface guards.
var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.Validator       = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
