package realtime

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("spark_realtime", parseCaddyfile)
	// Early: it answers the request itself (checking the token on its own),
	// so nothing meant for other requests (spark_auth, the cache, encode)
	// runs before it when it shares a route with them.
	httpcaddyfile.RegisterDirectiveOrder("spark_realtime", httpcaddyfile.After, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var r Handler
	err := r.UnmarshalCaddyfile(h.Dispenser)
	return &r, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_realtime [<matcher>] {
//		origin          <url>                       # required: the origin API
//		hs256_secret    <secret> [<kid>]            # and the other spark_auth token options
//		allowed_origins <origin...>                 # browser Origins; * for any
//		events origin   <token> [<stream url>]      # the origin's event stream (default URL: origin)
//		events redis    [<address...>] {            # or Redis pub/sub
//			<redis options>
//		}
//		queue           <frames> [<size>]           # 1000 1MiB
//		ping            <interval> [<pong timeout>] # 25s 10s
//		write_timeout   <duration>                  # 5s
//		max_frame       <size>                      # 64KiB
//		rate            <frames per second> [<burst>] # 20 40
//		origin_timeout  <duration>                  # 10s
//		in_flight       <per connection> [<per edge>] # 8 512
//		name            <hub name>                  # default
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	var origin *OriginEvents
	for d.NextBlock(0) {
		ok, err := h.UnmarshalOption(d)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		switch opt := d.Val(); opt {
		case "origin", "name":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			if opt == "origin" {
				h.Origin = v
			} else {
				h.Name = v
			}
		case "allowed_origins":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.AllowedOrigins = append(h.AllowedOrigins, args...)
		case "events":
			src, err := unmarshalEvents(d)
			if err != nil {
				return err
			}
			origin, _ = src.(*OriginEvents)
			h.EventsRaw = caddyconfig.JSONModuleObject(src, "source", src.(caddy.Module).CaddyModule().ID.Name(), nil)
		case "queue":
			args, err := argRange(d, 1, 2)
			if err != nil {
				return err
			}
			if h.QueueFrames, err = positiveInt(d, args[0]); err != nil {
				return err
			}
			if len(args) == 2 {
				if h.QueueBytes, err = size(d, args[1]); err != nil {
					return err
				}
			}
		case "ping":
			args, err := argRange(d, 1, 2)
			if err != nil {
				return err
			}
			if h.PingInterval, err = durationArg(d, args[0]); err != nil {
				return err
			}
			if len(args) == 2 {
				if h.PongTimeout, err = durationArg(d, args[1]); err != nil {
					return err
				}
			}
		case "write_timeout", "origin_timeout":
			args, err := argRange(d, 1, 1)
			if err != nil {
				return err
			}
			dur, err := durationArg(d, args[0])
			if err != nil {
				return err
			}
			if opt == "write_timeout" {
				h.WriteTimeout = dur
			} else {
				h.OriginTimeout = dur
			}
		case "max_frame":
			args, err := argRange(d, 1, 1)
			if err != nil {
				return err
			}
			if h.MaxFrame, err = size(d, args[0]); err != nil {
				return err
			}
		case "rate":
			args, err := argRange(d, 1, 2)
			if err != nil {
				return err
			}
			r, err := strconv.ParseFloat(args[0], 64)
			if err != nil || r <= 0 || r > 1e6 {
				return d.Errf("rate: want frames per second, a positive number, got %q", args[0])
			}
			h.Rate = r
			if len(args) == 2 {
				if h.Burst, err = positiveInt(d, args[1]); err != nil {
					return err
				}
			}
		case "in_flight":
			args, err := argRange(d, 1, 2)
			if err != nil {
				return err
			}
			if h.InFlight, err = positiveInt(d, args[0]); err != nil {
				return err
			}
			if len(args) == 2 {
				if h.InFlightPerEdge, err = positiveInt(d, args[1]); err != nil {
					return err
				}
			}
		default:
			return d.Errf("unknown spark_realtime option %q", opt)
		}
	}
	if origin != nil && origin.URL == "" {
		// The stream is at the origin unless told otherwise.
		origin.URL = h.Origin
		h.EventsRaw = caddyconfig.JSONModuleObject(origin, "source", "origin", nil)
	}
	return nil
}

// argRange reads the option's arguments: between lo and hi of them.
func argRange(d *caddyfile.Dispenser, lo, hi int) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) < lo || len(args) > hi {
		return nil, d.ArgErr()
	}
	return args, nil
}

func positiveInt(d *caddyfile.Dispenser, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, d.Errf("%s: want a positive integer, got %q", d.Val(), s)
	}
	return n, nil
}

// size reads a byte size: 65536, 64KiB, 1MiB, 1MB.
func size(d *caddyfile.Dispenser, s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n < 1 || n > 1<<40 {
		return 0, d.Errf("%s: want a size (65536, 64KiB, 1MiB), got %q", d.Val(), s)
	}
	return int64(n), nil
}

func durationArg(d *caddyfile.Dispenser, s string) (caddy.Duration, error) {
	dur, err := duration.Parse(s)
	if err != nil {
		return 0, d.Errf("%s: %v", d.Val(), err)
	}
	if dur <= 0 || dur > 24*time.Hour {
		return 0, d.Errf("%s: want a duration between 1ns and 24h, got %q", d.Val(), s)
	}
	return caddy.Duration(dur), nil
}

// unmarshalEvents reads `events origin …` or `events redis …`.
func unmarshalEvents(d *caddyfile.Dispenser) (caddyfile.Unmarshaler, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	name := d.Val()
	mod, err := caddy.GetModule("spark.realtime.events." + name)
	if err != nil {
		return nil, d.Errf("events: unknown source %q (origin or redis)", name)
	}
	src, ok := mod.New().(caddyfile.Unmarshaler)
	if !ok {
		return nil, d.Errf("events: source %q cannot be set up from a Caddyfile", name)
	}
	// The source reads its arguments and block from the cursor: its name
	// is the token it starts at.
	if err := src.UnmarshalCaddyfile(d.NewFromNextSegment()); err != nil {
		return nil, err
	}
	return src, nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)

// rawJSON is a tiny helper for tests and sources: a value as JSON.
func rawJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
