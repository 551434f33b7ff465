// Package duration parses the durations Spark's Caddyfile directives take
// (spark_cache's ttl and stale windows, its Redis timeouts, spark_image's
// timeouts): Caddy's duration syntax or a bare number of seconds, bounded so
// that no value wraps around int64 nanoseconds into something short.
package duration

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Max is the longest duration Parse accepts: 2^31 seconds (about 68 years),
// the largest delta-seconds value RFC 9111 §1.2.2 asks a cache to handle.
// Nothing Spark configures means anything longer, and sums of a few such
// values stay far from overflowing time.Duration.
const Max = (1 << 31) * time.Second

// maxLen bounds the input; no sensible duration is longer.
const maxLen = 64

// syntax is Caddy's duration grammar: time.ParseDuration's units plus d for
// days, each number with an optional fraction, and an optional sign.
var syntax = regexp.MustCompile(`^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h|d))+$`)

// term is one number and unit of the grammar.
var term = regexp.MustCompile(`([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h|d)`)

// unitSeconds is each unit's length in seconds.
var unitSeconds = map[string]float64{
	"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3,
	"s": 1, "m": 60, "h": 3600, "d": 86400,
}

// Parse reads a duration as Spark's directives take it: Caddy's syntax
// ("90s", "5m", "1.5h", "30d", "1h30m") or a bare number of seconds
// ("300"). Negative durations and durations longer than Max are refused
// with an error saying so.
func Parse(s string) (time.Duration, error) {
	if len(s) > maxLen {
		return 0, fmt.Errorf("duration %.16q… is longer than %d characters", s, maxLen)
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > uint64(Max/time.Second) {
			return 0, tooLong(s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := caddy.ParseDuration(s)
	if err != nil {
		// time.ParseDuration says only "invalid duration" when a value
		// overflows; tell a well-formed but huge value from a typo.
		if syntax.MatchString(s) && !strings.HasPrefix(s, "-") && approxSeconds(s) > Max.Seconds() {
			return 0, tooLong(s)
		}
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit (ns, us, ms, s, m, h, d), e.g. 90s, 5m, 24h, 30d, or whole seconds", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if d > Max {
		return 0, tooLong(s)
	}
	return d, nil
}

func tooLong(s string) error {
	return fmt.Errorf("duration %q is longer than the maximum %s (2^31 seconds, about 68 years)", s, Max)
}

// approxSeconds is the value of a duration matching syntax, in seconds, as a
// float (so a huge one is large rather than wrapped).
func approxSeconds(s string) float64 {
	total := 0.0
	for _, m := range term.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return math.Inf(1)
		}
		total += n * unitSeconds[m[2]]
	}
	return total
}
