package image

import (
	"fmt"
	"slices"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/imageproxy"
)

// PlanAppID is the ID of the Caddy app that holds the variant plan, and the
// name of the Caddyfile global option that configures it.
const PlanAppID = "spark_image_plan"

// PlanApp is the Caddy app spark_image_plan: the one variant plan (sizes,
// the width and quality of each network class, formats) that
// spark_image_hints and spark_image both read when they are provisioned.
// Being one definition, the hints cannot choose a variant the handler
// refuses to make, and a reload that changes it reaches both. Unset fields
// keep imageproxy.DefaultPlan's values; a config without the app gets the
// default plan.
type PlanApp struct {
	// Sizes are the widths variants are made in, ascending.
	Sizes []int `json:"sizes,omitempty"`
	// Slow is [width, quality] of the slow class (slow 3G, 2G, Save-Data).
	Slow []int `json:"slow,omitempty"`
	// ThreeG is [width, quality] of the 3G class.
	ThreeG []int `json:"3g,omitempty"`
	// Fast is [width, quality] of the fast class (4G, Wi-Fi, wired).
	Fast []int `json:"fast,omitempty"`
	// DefaultClass applies with no hint and no RTT measurement: slow, 3g
	// or fast.
	DefaultClass string `json:"default_class,omitempty"`
	// Formats are the output formats offered, best first (avif, webp,
	// jpeg); jpeg is required.
	Formats []string `json:"formats,omitempty"`

	plan imageproxy.Plan
}

// CaddyModule returns the Caddy module information.
func (PlanApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  PlanAppID,
		New: func() caddy.Module { return new(PlanApp) },
	}
}

// Provision builds the plan from the configured fields. (Caddy prefixes
// its errors, and Validate's, with the app's name.)
func (a *PlanApp) Provision(caddy.Context) error {
	p, err := a.build()
	if err != nil {
		return fmt.Errorf("build the variant plan: %w", err)
	}
	a.plan = p
	return nil
}

// Validate checks the plan as a whole: budget widths among the sizes,
// qualities in range, JPEG among the formats.
func (a *PlanApp) Validate() error { return a.plan.Validate() }

// Start implements caddy.App: the plan is data, nothing runs.
func (a *PlanApp) Start() error { return nil }

// Stop implements caddy.App.
func (a *PlanApp) Stop() error { return nil }

// Plan returns the provisioned plan. Its slices are shared: read them only.
func (a *PlanApp) Plan() imageproxy.Plan { return a.plan }

// build returns imageproxy.DefaultPlan with the configured fields applied,
// without checking the plan as a whole (Validate does).
func (a *PlanApp) build() (imageproxy.Plan, error) {
	p := imageproxy.DefaultPlan()
	if len(a.Sizes) > 0 {
		p.Sizes = slices.Clone(a.Sizes)
	}
	for _, b := range []struct {
		class imageproxy.Class
		value []int
	}{{imageproxy.ClassSlow, a.Slow}, {imageproxy.Class3G, a.ThreeG}, {imageproxy.ClassFast, a.Fast}} {
		switch len(b.value) {
		case 0:
		case 2:
			p.Budgets[b.class] = imageproxy.Budget{Width: b.value[0], Quality: b.value[1]}
		default:
			return p, fmt.Errorf("%s wants [width, quality], got %v", b.class, b.value)
		}
	}
	if a.DefaultClass != "" {
		c, err := imageproxy.ParseClass(a.DefaultClass)
		if err != nil {
			return p, err
		}
		p.DefaultClass = c
	}
	if len(a.Formats) > 0 {
		p.Formats = nil
		for _, s := range a.Formats {
			f, err := imageproxy.ParseFormat(s)
			if err != nil {
				return p, err
			}
			p.Formats = append(p.Formats, f)
		}
	}
	return p, nil
}

// sharedPlan returns the plan of the config's spark_image_plan app, loading
// the app (with the default plan when the config has none) if no module
// has yet.
func sharedPlan(ctx caddy.Context) (imageproxy.Plan, error) {
	app, err := ctx.App(PlanAppID)
	if err != nil {
		return imageproxy.Plan{}, fmt.Errorf("load the variant plan: %w", err)
	}
	return app.(*PlanApp).Plan(), nil
}

// Interface guards
var (
	_ caddy.App         = (*PlanApp)(nil)
	_ caddy.Provisioner = (*PlanApp)(nil)
	_ caddy.Validator   = (*PlanApp)(nil)
)
