package deck

import (
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/internal/contract"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("spark_deck_hints", parseCaddyfile)
	// Right after request_header: before spark_cache (ordered before
	// encode), so that hits are announced as misses are.
	httpcaddyfile.RegisterDirectiveOrder("spark_deck_hints", httpcaddyfile.After, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var d Handler
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return &d, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_deck_hints [<matcher>] {
//		photos           <n>          # announced and warmed per deck, default 5, at most 10
//		no_warm                       # announce only
//		warm_concurrency <n>          # warms at once, default 2
//		warm_queue       <n>          # warms waiting or running, default 64
//		warm_timeout     <duration>   # one warm, default 15s
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "photos":
			err = caddyargs.Read(d, 1, caddyargs.Int(&h.Photos, 1))
			if err == nil && h.Photos > contract.MaxDeckPhotos {
				return d.Errf("photos: at most %d", contract.MaxDeckPhotos)
			}
		case "no_warm":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.NoWarm = true
		case "warm_concurrency":
			err = caddyargs.Read(d, 1, caddyargs.Int(&h.WarmConcurrency, 1))
		case "warm_queue":
			err = caddyargs.Read(d, 1, caddyargs.Int(&h.WarmQueue, 1))
		case "warm_timeout":
			err = caddyargs.Read(d, 1, caddyargs.Duration(&h.WarmTimeout, time.Millisecond, time.Hour))
		default:
			return d.Errf("unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
