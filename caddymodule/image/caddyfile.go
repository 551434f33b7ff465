package image

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
	"github.com/spark-edge/spark/caddymodule/internal/duration"
	"github.com/spark-edge/spark/imageproxy"
)

func init() {
	httpcaddyfile.RegisterGlobalOption(PlanAppID, parsePlanOption)
	// Right after request_header: before spark_cache (which sits right
	// before encode), whatever order the plugins' init functions run in,
	// so the cache sees the normalized Spark-Image-Variant header.
	caddyargs.RegisterHandler[Hints]("spark_image_hints", httpcaddyfile.After, "request_header")
	// A responder: after spark_cache and encode, before respond and
	// reverse_proxy, so `spark_image /photos/*` takes those paths.
	caddyargs.RegisterHandler[Handler]("spark_image", httpcaddyfile.Before, "respond")
}

// parsePlanOption reads the global option spark_image_plan into the app
// of that name.
func parsePlanOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Errf("%s is given twice: both handlers share one plan", PlanAppID)
	}
	var app PlanApp
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: PlanAppID, Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the plan app from the global option:
//
//	{
//		spark_image_plan {
//			sizes          <width...>
//			slow           <width> <quality>
//			3g             <width> <quality>
//			fast           <width> <quality>
//			default_class  slow|3g|fast
//			formats        <avif|webp|jpeg...>
//		}
//	}
//
// The plan as a whole (budget widths among the sizes…) is checked by
// Validate.
func (a *PlanApp) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, a.unmarshalOption)
}

// UnmarshalCaddyfile sets up the middleware from Caddyfile tokens:
//
//	spark_image_hints [<matcher>] {
//		critical_ch
//		measure_rtt off
//	}
//
// The variant plan is the global option spark_image_plan's.
func (h *Hints) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, func(d *caddyfile.Dispenser) error {
		var err error
		switch d.Val() {
		case "critical_ch":
			h.CriticalCH, err = caddyargs.OnOff(d)
		case "measure_rtt":
			h.NoMeasureRTT, err = offOn(d)
		default:
			err = unknownOption(d, "spark_image_hints")
		}
		return err
	})
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	spark_image [<matcher>] {
//		root              <directory>      # or:
//		upstream          <http(s) base URL>
//		strip_prefix      <path prefix>
//		upstream_timeout  <duration>
//		max_source_bytes  <size>
//		max_source_pixels <count>
//		max_side          <pixels>
//		timeout           <duration>
//		max_concurrent    <n>
//		max_queue         <n>
//		avif_effort       <0-9>
//		cache_control     <value>
//		measure_rtt       on|off
//	}
//
// The variant plan is the global option spark_image_plan's.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Block(d, h.unmarshalOption)
}

// unmarshalOption reads one spark_image option at the dispenser's cursor.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	var arg caddyargs.Setter
	switch opt := d.Val(); opt {
	case "root":
		arg = caddyargs.String(&h.Root)
	case "upstream":
		arg = caddyargs.String(&h.Upstream)
	case "strip_prefix":
		arg = caddyargs.String(&h.StripPrefix)
	case "cache_control":
		arg = caddyargs.String(&h.CacheControl)
	case "timeout":
		arg = positiveDuration(&h.Timeout)
	case "upstream_timeout":
		arg = positiveDuration(&h.UpstreamTimeout)
	case "max_source_bytes":
		arg = caddyargs.Size(&h.MaxSourceBytes, 1, maxSourceBytes)
	case "max_source_pixels":
		arg = caddyargs.Int64(&h.MaxSourcePixels, 0)
	case "max_side":
		arg = caddyargs.Int(&h.MaxSide, 0)
	case "max_concurrent":
		arg = caddyargs.Int(&h.MaxConcurrent, 0)
	case "max_queue":
		arg = caddyargs.Int(&h.MaxQueue, 0)
	case "avif_effort":
		arg = caddyargs.Int(&h.AVIFEffort, 0)
	case "measure_rtt":
		var err error
		h.NoMeasureRTT, err = offOn(d)
		return err
	default:
		return unknownOption(d, "spark_image")
	}
	return caddyargs.Read(d, 1, arg)
}

// maxSourceBytes bounds the max_source_bytes option: 4 GiB.
const maxSourceBytes = 1 << 32

// positiveDuration reads a duration from 1ns up to duration.Max.
func positiveDuration(v *caddy.Duration) caddyargs.Setter {
	return caddyargs.Duration(v, time.Nanosecond, duration.Max)
}

// planOptions are the options of spark_image_plan.
var planOptions = []string{"sizes", "slow", "3g", "fast", "default_class", "formats"}

// unknownOption is the error for an option the directive does not take;
// a plan option gets one that says where the plan is set now.
func unknownOption(d *caddyfile.Dispenser, directive string) error {
	if slices.Contains(planOptions, d.Val()) {
		return d.Errf("%s: %q belongs to the variant plan, which spark_image and spark_image_hints share: set it in the global option %s { … }",
			directive, d.Val(), PlanAppID)
	}
	return d.Errf("unrecognized %s option %q", directive, d.Val())
}

// unmarshalOption reads one plan option at the dispenser's cursor.
func (a *PlanApp) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "sizes":
		sizes, err := caddyargs.ListOf(d, func(arg string) (int, error) {
			n, err := strconv.Atoi(arg)
			if err != nil {
				return 0, fmt.Errorf("%q is not a width", arg)
			}
			return n, nil
		})
		if err != nil {
			return err
		}
		a.Sizes = sizes
	case "slow", "3g", "fast":
		var w, q string
		if !d.AllArgs(&w, &q) {
			return d.ArgErr()
		}
		wi, err1 := strconv.Atoi(w)
		qi, err2 := strconv.Atoi(q)
		if err1 != nil || err2 != nil {
			return d.Errf("%s: want <width> <quality>, got %q %q", opt, w, q)
		}
		switch opt {
		case "slow":
			a.Slow = []int{wi, qi}
		case "3g":
			a.ThreeG = []int{wi, qi}
		default:
			a.Fast = []int{wi, qi}
		}
	case "default_class":
		if !d.AllArgs(&a.DefaultClass) {
			return d.ArgErr()
		}
		if _, err := imageproxy.ParseClass(a.DefaultClass); err != nil {
			return d.Errf("%v", err)
		}
	case "formats":
		formats, err := caddyargs.ListOf(d, func(f string) (string, error) {
			_, err := imageproxy.ParseFormat(f)
			return f, err
		})
		if err != nil {
			return err
		}
		a.Formats = formats
	default:
		return d.Errf("unrecognized %s option %q", PlanAppID, opt)
	}
	return nil
}

// offOn is onOff negated, for the No… fields of options written as
// "measure_rtt off".
func offOn(d *caddyfile.Dispenser) (bool, error) {
	on, err := caddyargs.OnOff(d)
	return !on, err
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*PlanApp)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Hints)(nil)
)
