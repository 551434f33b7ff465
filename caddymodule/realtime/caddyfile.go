package realtime

import (
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
		default:
			setters := h.optionArgs(opt)
			if setters == nil {
				return d.Errf("unknown spark_realtime option %q", opt)
			}
			if err := setArgs(d, 1, setters...); err != nil {
				return err
			}
		}
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
func (h *Handler) optionArgs(opt string) []argSetter {
	switch opt {
	case "origin":
		return []argSetter{stringArg(&h.Origin)}
	case "name":
		return []argSetter{stringArg(&h.Name)}
	case "queue":
		return []argSetter{intArg(&h.QueueFrames, 1), sizeArg(&h.QueueBytes)}
	case "ping":
		return []argSetter{durationArg(&h.PingInterval), durationArg(&h.PongTimeout)}
	case "write_timeout":
		return []argSetter{durationArg(&h.WriteTimeout)}
	case "origin_timeout":
		return []argSetter{durationArg(&h.OriginTimeout)}
	case "max_frame":
		return []argSetter{sizeArg(&h.MaxFrame)}
	case "rate":
		return []argSetter{rateArg(&h.Rate), intArg(&h.Burst, 1)}
	case "in_flight":
		return []argSetter{intArg(&h.InFlight, 1), intArg(&h.InFlightPerEdge, 1)}
	}
	return nil
}

// argSetter parses one argument of an option into its field.
type argSetter func(d *caddyfile.Dispenser, arg string) error

// setArgs reads the option's arguments: at least required, at most one
// per setter.
func setArgs(d *caddyfile.Dispenser, required int, setters ...argSetter) error {
	args := d.RemainingArgs()
	if len(args) < required || len(args) > len(setters) {
		return d.ArgErr()
	}
	for i, a := range args {
		if err := setters[i](d, a); err != nil {
			return err
		}
	}
	return nil
}

func stringArg(v *string) argSetter {
	return func(_ *caddyfile.Dispenser, s string) error {
		*v = s
		return nil
	}
}

// intArg reads an integer of at least lo.
func intArg(v *int, lo int) argSetter {
	return func(d *caddyfile.Dispenser, s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			return d.Errf("%s: want an integer of at least %d, got %q", d.Val(), lo, s)
		}
		*v = n
		return nil
	}
}

// sizeArg reads a byte size: 65536, 64KiB, 1MiB, 1MB.
func sizeArg(v *int64) argSetter {
	return func(d *caddyfile.Dispenser, s string) error {
		n, err := humanize.ParseBytes(s)
		if err != nil || n < 1 || n > 1<<40 {
			return d.Errf("%s: want a size (65536, 64KiB, 1MiB), got %q", d.Val(), s)
		}
		*v = int64(n)
		return nil
	}
}

// durationArg reads a duration between 1ns and 24h.
func durationArg(v *caddy.Duration) argSetter {
	return func(d *caddyfile.Dispenser, s string) error {
		dur, err := duration.Parse(s)
		if err != nil {
			return d.Errf("%s: %v", d.Val(), err)
		}
		if dur <= 0 || dur > 24*time.Hour {
			return d.Errf("%s: want a duration between 1ns and 24h, got %q", d.Val(), s)
		}
		*v = caddy.Duration(dur)
		return nil
	}
}

// rateArg reads frames per second: a positive number.
func rateArg(v *float64) argSetter {
	return func(d *caddyfile.Dispenser, s string) error {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 || r > 1e6 {
			return d.Errf("rate: want frames per second, a positive number, got %q", s)
		}
		*v = r
		return nil
	}
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
