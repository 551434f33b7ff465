// Package caddyargs reads Spark's Caddyfile directives: a handler
// directive into its module (RegisterHandler), a directive's block option by
// option (Block), and the arguments of an option into typed config fields.
// Each argument has a Setter that parses and bounds it and names the
// option in its error, so every Spark directive (spark_cache, spark_image,
// spark_realtime and their redis blocks) reads a duration, a size, a
// count or an on/off switch the same way.
package caddyargs

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/spark-edge/spark/caddymodule/internal/duration"
)

// RegisterHandler registers the handler directive name, whose module is
// *T set up by its own UnmarshalCaddyfile, and its place in the directive
// order: pos (before or after) the directive anchor.
func RegisterHandler[T any, P interface {
	*T
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}](name string, pos httpcaddyfile.Positional, anchor string) {
	httpcaddyfile.RegisterHandlerDirective(name, func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		m := P(new(T))
		err := m.UnmarshalCaddyfile(h.Dispenser)
		return m, err
	})
	httpcaddyfile.RegisterDirectiveOrder(name, pos, anchor)
}

// Block reads a directive (or global option) that takes no argument,
// calling option at each option of its block, the cursor on the option's
// name.
func Block(d *caddyfile.Dispenser, option func(*caddyfile.Dispenser) error) error {
	d.Next() // the directive's or global option's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if err := option(d); err != nil {
			return err
		}
	}
	return nil
}

// List returns the arguments of the option at the cursor: one or more.
func List(d *caddyfile.Dispenser) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, nil
}

// ListOf returns the arguments of the option at the cursor (one or more),
// each through parse; parse's error says what is wrong with the argument
// (ListOf adds the option's name and place).
func ListOf[T any](d *caddyfile.Dispenser, parse func(arg string) (T, error)) ([]T, error) {
	opt := d.Val()
	args, err := List(d)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(args))
	for i, a := range args {
		if out[i], err = parse(a); err != nil {
			return nil, d.Errf("%s: %v", opt, err)
		}
	}
	return out, nil
}

// OnOff reads the optional on|off (or true|false) argument of the option
// at the cursor: a bare option means on.
func OnOff(d *caddyfile.Dispenser) (bool, error) {
	opt, on := d.Val(), true
	if d.NextArg() {
		switch d.Val() {
		case "on", "true":
		case "off", "false":
			on = false
		default:
			return false, d.Errf("%s: want on or off, got %q", opt, d.Val())
		}
		if d.NextArg() {
			return false, d.ArgErr()
		}
	}
	return on, nil
}

// A Setter parses one argument of an option into its field; its error says
// what is wrong with the argument (Read adds the option's name and place).
type Setter func(arg string) error

// Read reads the arguments of the option at the cursor: at least required
// of them, at most one per setter, each given to its setter in order.
func Read(d *caddyfile.Dispenser, required int, setters ...Setter) error {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) < required || len(args) > len(setters) {
		return d.ArgErr()
	}
	for i, a := range args {
		if err := setters[i](a); err != nil {
			return d.Errf("%s: %v", opt, err)
		}
	}
	return nil
}

// String sets *v to the argument as it is.
func String(v *string) Setter {
	return func(s string) error {
		*v = s
		return nil
	}
}

// Int sets *v to a decimal integer of at least lo.
func Int(v *int, lo int) Setter {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			return fmt.Errorf("want an integer of at least %d, got %q", lo, s)
		}
		*v = n
		return nil
	}
}

// Int64 sets *v to a decimal integer of at least lo.
func Int64(v *int64, lo int64) Setter {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < lo {
			return fmt.Errorf("want an integer of at least %d, got %q", lo, s)
		}
		*v = n
		return nil
	}
}

// Float sets *v to a number in (lo, hi].
func Float(v *float64, lo, hi float64) Setter {
	return func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > lo && f <= hi) { // NaN is in no range
			return fmt.Errorf("want a number above %g and at most %g, got %q", lo, hi, s)
		}
		*v = f
		return nil
	}
}

// Size sets *v to a byte size (65536, 64KiB, 1MiB, 10MB) in [lo, hi].
func Size(v *int64, lo, hi uint64) Setter {
	return func(s string) error {
		n, err := humanize.ParseBytes(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a size from %s to %s (65536, 64KiB, 1MiB), got %q",
				humanize.IBytes(lo), humanize.IBytes(hi), s)
		}
		*v = int64(n)
		return nil
	}
}

// Duration sets *v to a duration in [lo, hi]: Caddy's syntax (1m30s, 2d)
// or bare seconds, never wrapped around (see package duration).
func Duration(v *caddy.Duration, lo, hi time.Duration) Setter {
	return func(s string) error {
		dur, err := duration.Parse(s)
		if err != nil {
			return err
		}
		if dur < lo || dur > hi {
			return fmt.Errorf("want a duration from %v to %v, got %q", lo, hi, s)
		}
		*v = caddy.Duration(dur)
		return nil
	}
}
