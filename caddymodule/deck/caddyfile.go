package deck

import (
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/internal/contract"
)

func init() {
	// Right after request_header: before spark_cache (ordered before
	// encode), so that hits are announced as misses are.
	caddyargs.RegisterHandler[Handler]("spark_deck_hints", httpcaddyfile.After, "request_header")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_deck_hints [<matcher>] {
//		photos           <n>          # announced and warmed per deck, default 5, at most 10
//		no_warm                       # announce the photos only, warm none
//		warm_concurrency <n>          # warms at once, default 2
//		warm_queue       <n>          # warms waiting or running, default 64
//		warm_timeout     <duration>   # one warm (photo, profile or page), default 15s
//		profiles         <n>          # cards whose profile is warmed as the viewer, default 0, at most 100
//		next_page                     # warm the deck's next page (after= the origin's cursor) as the viewer
//		viewer_concurrency <n>        # warms as the viewer at once, default 2
//		viewer_queue     <n>          # warms as the viewer waiting or running, default 256
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, h.unmarshalOption)
}

// unmarshalOption reads one spark_deck_hints option at the dispenser's
// cursor.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "photos":
		if err := caddyargs.Read(d, 1, caddyargs.Int(&h.Photos, 1)); err != nil {
			return err
		}
		if h.Photos > contract.MaxDeckPhotos {
			return d.Errf("photos: at most %d", contract.MaxDeckPhotos)
		}
		return nil
	case "no_warm":
		if d.NextArg() {
			return d.ArgErr()
		}
		h.NoWarm = true
		return nil
	case "warm_concurrency":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.WarmConcurrency, 1))
	case "warm_queue":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.WarmQueue, 1))
	case "warm_timeout":
		return caddyargs.Read(d, 1, caddyargs.Duration(&h.WarmTimeout, time.Millisecond, time.Hour))
	case "profiles":
		if err := caddyargs.Read(d, 1, caddyargs.Int(&h.Profiles, 1)); err != nil {
			return err
		}
		if h.Profiles > contract.MaxDeckCards {
			return d.Errf("profiles: at most %d", contract.MaxDeckCards)
		}
		return nil
	case "next_page":
		if d.NextArg() {
			return d.ArgErr()
		}
		h.NextPage = true
		return nil
	case "viewer_concurrency":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.ViewerConcurrency, 1))
	case "viewer_queue":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.ViewerQueue, 1))
	default:
		return d.Errf("unknown subdirective %q", d.Val())
	}
}
