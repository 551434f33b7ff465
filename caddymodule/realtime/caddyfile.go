package realtime

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
)

func init() {
	// Early: it answers the request itself (checking the token on its own),
	// so nothing meant for other requests (spark_auth, the cache, encode)
	// runs before it when it shares a route with them.
	caddyargs.RegisterHandler[Handler]("spark_realtime", httpcaddyfile.After, "basic_auth")
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
//		admission_timeout <duration>                # 10s
//		in_flight       <per connection> [<per edge>] # 8 512
//		name            <hub name>                  # default
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	var origin *OriginEvents
	err := caddyargs.Block(d, func(d *caddyfile.Dispenser) error {
		if ok, err := h.UnmarshalOption(d); ok || err != nil {
			return err
		}
		switch opt := d.Val(); opt {
		case "allowed_origins":
			args, err := caddyargs.List(d)
			h.AllowedOrigins = append(h.AllowedOrigins, args...)
			return err
		case "events":
			src, err := unmarshalEvents(d)
			if err != nil {
				return err
			}
			origin, _ = src.(*OriginEvents)
			h.EventsRaw = caddyconfig.JSONModuleObject(src, "source", src.(caddy.Module).CaddyModule().ID.Name(), nil)
			return nil
		default:
			setters := h.optionArgs(opt)
			if setters == nil {
				return d.Errf("unknown spark_realtime option %q", opt)
			}
			return caddyargs.Read(d, 1, setters...)
		}
	})
	if err != nil {
		return err
	}
	if origin != nil && origin.URL == "" {
		// The stream is at the origin unless told otherwise.
		origin.URL = h.Origin
		h.EventsRaw = caddyconfig.JSONModuleObject(origin, "source", "origin", nil)
	}
	return nil
}

// optionArgs returns the setters of an option's arguments (the first
// required, the others optional), nil for an unknown option.
func (h *Handler) optionArgs(opt string) []caddyargs.Setter {
	switch opt {
	case "origin":
		return []caddyargs.Setter{caddyargs.String(&h.Origin)}
	case "name":
		return []caddyargs.Setter{caddyargs.String(&h.Name)}
	case "queue":
		return []caddyargs.Setter{caddyargs.Int(&h.QueueFrames, 1), sizeArg(&h.QueueBytes)}
	case "ping":
		return []caddyargs.Setter{durationArg(&h.PingInterval), durationArg(&h.PongTimeout)}
	case "write_timeout":
		return []caddyargs.Setter{durationArg(&h.WriteTimeout)}
	case "origin_timeout":
		return []caddyargs.Setter{durationArg(&h.OriginTimeout)}
	case "admission_timeout":
		return []caddyargs.Setter{durationArg(&h.AdmissionTimeout)}
	case "max_frame":
		return []caddyargs.Setter{sizeArg(&h.MaxFrame)}
	case "rate":
		return []caddyargs.Setter{caddyargs.Float(&h.Rate, 0, maxRate), caddyargs.Int(&h.Burst, 1)}
	case "in_flight":
		return []caddyargs.Setter{caddyargs.Int(&h.InFlight, 1), caddyargs.Int(&h.InFlightPerEdge, 1)}
	}
	return nil
}

// The bounds of the handler's option arguments.
const (
	minDuration = time.Nanosecond
	maxDuration = 24 * time.Hour
	maxSize     = 1 << 40
	maxRate     = 1e6
)

// durationArg reads a duration between 1ns and 24h.
func durationArg(v *caddy.Duration) caddyargs.Setter {
	return caddyargs.Duration(v, minDuration, maxDuration)
}

// sizeArg reads a byte size: 65536, 64KiB, 1MiB, 1MB.
func sizeArg(v *int64) caddyargs.Setter { return caddyargs.Size(v, 1, maxSize) }

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
