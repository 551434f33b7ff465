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
		return readCount(d, "photos", &h.Photos, contract.MaxDeckPhotos)
	case "no_warm":
		return readFlag(d, &h.NoWarm)
	case "warm_concurrency":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.WarmConcurrency, 1))
	case "warm_queue":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.WarmQueue, 1))
	case "warm_timeout":
		return caddyargs.Read(d, 1, caddyargs.Duration(&h.WarmTimeout, time.Millisecond, time.Hour))
	case "profiles":
		return readCount(d, "profiles", &h.Profiles, contract.MaxDeckCards)
	case "next_page":
		return readFlag(d, &h.NextPage)
	case "viewer_concurrency":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.ViewerConcurrency, 1))
	case "viewer_queue":
		return caddyargs.Read(d, 1, caddyargs.Int(&h.ViewerQueue, 1))
	default:
		return d.Errf("unknown subdirective %q", d.Val())
	}
}

// readCount reads option's one argument into v: from 1 to max.
func readCount(d *caddyfile.Dispenser, option string, v *int, max int) error {
	if err := caddyargs.Read(d, 1, caddyargs.Int(v, 1)); err != nil {
		return err
	}
	if *v > max {
		return d.Errf("%s: at most %d", option, max)
	}
	return nil
}

// readFlag sets v for an option that takes no argument.
func readFlag(d *caddyfile.Dispenser, v *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*v = true
	return nil
}
