package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// DevJWTSecret is the origin's fixed development HS256 secret (embedded store
// only); tokens are minted with it unless another secret is given.
const DevJWTSecret = "spark-development-secret-not-for-production"

// Mode is the load model.
type Mode string

// Load models.
const (
	// ModeOpen starts flows at a planned rate whatever the responses do.
	ModeOpen Mode = "open"
	// ModeClosed runs a fixed number of workers back to back (max throughput).
	ModeClosed Mode = "closed"
)

// Limits that keep a run bounded.
const (
	MaxDuration    = time.Hour
	MaxConcurrency = 10000
	MaxUsers       = 10_000_000
)

// Config is one load test run.
type Config struct {
	// Target is the base URL of the edge or origin; only loopback hosts are
	// accepted.
	Target string
	// Scenario is the traffic mix.
	Scenario *Scenario
	// Mode is open (arrival rate) or closed (fixed concurrency).
	Mode Mode
	// Rate is the target request rate per second in open mode; flows start
	// at Rate / Scenario.MeanRequestsPerFlow() per second.
	Rate float64
	// Concurrency is the number of closed-mode workers.
	Concurrency int
	// Duration is the whole run, ramp included.
	Duration time.Duration
	// Ramp is the time to reach the full rate (or all workers).
	Ramp time.Duration
	// ThinkScale multiplies the scenario's think times (0: no pauses).
	ThinkScale float64
	// Poisson spaces open-model arrivals exponentially instead of evenly.
	Poisson bool
	// Users overrides the scenario's number of virtual users.
	Users int
	// JWTSecret signs the virtual users' tokens (default DevJWTSecret).
	JWTSecret string
	// Timeout bounds each request.
	Timeout time.Duration
	// MaxInFlight caps concurrent open-model flows; arrivals over it are
	// counted as "dropped" errors (the load generator is saturated).
	MaxInFlight int
	// SkipSetup skips the scenario's per-user setup requests.
	SkipSetup bool
	// NoReadAfter stops virtual users from echoing Spark-Read-After (the
	// app does): behind several origins on a lagging replica, their own
	// writes may then read old (a control for the checker).
	NoReadAfter bool
	// Progress, when set, is called about once a second.
	Progress func(Progress)
	// Trace, when set, receives one JSON line per measured request
	// (TraceRecord): who asked what, the status and Cache-Status.
	Trace io.Writer
}

// CheckTarget accepts only http(s) URLs on loopback hosts: load tests never
// leave this machine.
func CheckTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", target)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("target %q: only localhost and loopback addresses (127.0.0.0/8, ::1) may be load tested", target)
	}
	if u.Path == "/" {
		u.Path = ""
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validate() (*url.URL, error) {
	u, err := CheckTarget(c.Target)
	if err != nil {
		return nil, err
	}
	var errs []error
	if c.Scenario == nil {
		errs = append(errs, errors.New("no scenario"))
	}
	switch c.Mode {
	case ModeOpen:
		if c.Rate <= 0 || c.Rate > 1e6 {
			errs = append(errs, fmt.Errorf("rate must be in (0, 1e6] requests/s, got %g", c.Rate))
		}
	case ModeClosed:
		if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
			errs = append(errs, fmt.Errorf("concurrency must be in 1..%d, got %d", MaxConcurrency, c.Concurrency))
		}
	default:
		errs = append(errs, fmt.Errorf("mode must be open or closed, got %q", c.Mode))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration must be in (0, %s], got %s", MaxDuration, c.Duration))
	}
	if c.Ramp < 0 || c.Ramp >= c.Duration {
		errs = append(errs, fmt.Errorf("ramp must be in [0, duration), got %s", c.Ramp))
	}
	if c.ThinkScale < 0 {
		errs = append(errs, fmt.Errorf("think scale must be >= 0, got %g", c.ThinkScale))
	}
	if c.Users < 0 || c.Users > MaxUsers {
		errs = append(errs, fmt.Errorf("users must be in 1..%d, got %d", MaxUsers, c.Users))
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 50000
	}
	if c.JWTSecret == "" {
		c.JWTSecret = DevJWTSecret
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("loadtest config: %w", err)
	}
	return u, nil
}
