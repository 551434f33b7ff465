package duration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"300", 300 * time.Second},
		{"90s", 90 * time.Second},
		{"5m", 5 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"30d", 30 * 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"2147483648", Max},
		{"2147483648s", Max},
		{"596523h14m8s", Max},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// Huge values are refused with an error naming the limit, never wrapped: a
// bare 20000000000 seconds times 1e9 wraps int64 to about 18 days.
func TestParseRefusesHugeValues(t *testing.T) {
	for _, in := range []string{
		"2147483649", "20000000000", "18446744073709551616", "99999999999999999999999",
		"1000000000h", "2147483649s", "596524h", "24856d", "106752d", "9999999999999999999ns",
		"2562048h", "100000000000000000000000d",
	} {
		got, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "longer than the maximum") {
			t.Errorf("Parse(%q): error %q does not say the value is too long", in, err)
		}
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	for _, in := range []string{"", "soon", "-5m", "-1", "1.5", "1e3d", "5 m", "5mm", "+", strings.Repeat("1", 65)} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0", "300", "90s", "5m", "1.5h", "30d", "1h30m", "250ms", "2147483648", "2147483649",
		"20000000000", "1000000000h", "106752d", "-5m", "+5m", ".5s", "5.s", "1e3d", "1d1d", "µs", "3µs",
		"18446744073709551616", "", " ", "5 m", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("Parse(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d < 0 || d > Max {
			t.Fatalf("Parse(%q) = %v, outside [0, %v]", s, d, Max)
		}
		// What Parse accepts reads back the same from its own String.
		if again, err := Parse(d.String()); err != nil || again != d {
			t.Fatalf("Parse(%q) = %v, but Parse(%q) = %v, %v", s, d, d.String(), again, err)
		}
		// Bare seconds are exact; anything else agrees with Caddy.
		if n, err := strconv.ParseUint(s, 10, 64); err == nil && strings.Trim(s, "0123456789") == "" {
			if d != time.Duration(n)*time.Second {
				t.Fatalf("Parse(%q) = %v, want %d seconds", s, d, n)
			}
			return
		}
		if cd, err := caddy.ParseDuration(s); err != nil || cd != d {
			t.Fatalf("Parse(%q) = %v, caddy.ParseDuration says %v, %v", s, d, cd, err)
		}
	})
}
