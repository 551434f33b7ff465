package cache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	const s = time.Second
	none := directives{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, staleWhileRevalidate: -1, staleIfError: -1}
	with := func(f func(*directives)) directives { d := none; f(&d); return d }
	cases := []struct {
		name   string
		values []string
		want   directives
	}{
		{"empty", nil, none},
		{"empty string", []string{""}, none},
		{"only commas and spaces", []string{" , ,, "}, none},
		{"max-age", []string{"max-age=60"}, with(func(d *directives) { d.maxAge = 60 * s })},
		{"case and spaces", []string{"  Max-Age = 60 ,PUBLIC"}, with(func(d *directives) { d.maxAge = 60 * s; d.public = true })},
		{"quoted max-age", []string{`max-age="60"`}, with(func(d *directives) { d.maxAge = 60 * s })},
		{"all flags", []string{"no-store, no-cache, private, public, must-revalidate, proxy-revalidate, no-transform, only-if-cached, immutable"},
			with(func(d *directives) {
				d.noStore, d.noCache, d.private, d.public = true, true, true, true
				d.mustRevalidate, d.proxyRevalidate, d.noTransform = true, true, true
				d.onlyIfCached, d.immutable = true, true
			})},
		{"all deltas", []string{"max-age=1, s-maxage=2, max-stale=3, min-fresh=4, stale-while-revalidate=5, stale-if-error=6"},
			with(func(d *directives) {
				d.maxAge, d.sMaxAge, d.maxStale, d.minFresh = 1*s, 2*s, 3*s, 4*s
				d.staleWhileRevalidate, d.staleIfError = 5*s, 6*s
			})},
		{"several field lines", []string{"max-age=10", "s-maxage=20", "private"},
			with(func(d *directives) { d.maxAge, d.sMaxAge, d.private = 10*s, 20*s, true })},
		{"quoted comma stays in one item", []string{`no-cache="Set-Cookie, X-Foo", max-age=5`},
			with(func(d *directives) { d.noCache = true; d.maxAge = 5 * s })},
		{"quoted private list", []string{`private="a,b,max-age=1", s-maxage=9`},
			with(func(d *directives) { d.private = true; d.sMaxAge = 9 * s })},
		{"escaped quote inside quotes", []string{`foo="a\",max-age=1", max-age=7`},
			with(func(d *directives) { d.maxAge = 7 * s })},
		{"duplicate takes smallest (first smaller)", []string{"max-age=10, max-age=100"}, with(func(d *directives) { d.maxAge = 10 * s })},
		{"duplicate takes smallest (second smaller)", []string{"max-age=100", "max-age=10"}, with(func(d *directives) { d.maxAge = 10 * s })},
		{"duplicate s-maxage", []string{"s-maxage=5, s-maxage=3, s-maxage=4"}, with(func(d *directives) { d.sMaxAge = 3 * s })},
		{"junk value is zero", []string{"max-age=abc"}, with(func(d *directives) { d.maxAge = 0 })},
		{"junk beats a valid duplicate", []string{"max-age=60, max-age=junk"}, with(func(d *directives) { d.maxAge = 0 })},
		{"negative is zero", []string{"max-age=-5"}, with(func(d *directives) { d.maxAge = 0 })},
		{"fraction is zero", []string{"max-age=1.5"}, with(func(d *directives) { d.maxAge = 0 })},
		{"plus sign is zero", []string{"max-age=+5"}, with(func(d *directives) { d.maxAge = 0 })},
		{"missing value is zero", []string{"max-age"}, with(func(d *directives) { d.maxAge = 0 })},
		{"empty value is zero", []string{"max-age="}, with(func(d *directives) { d.maxAge = 0 })},
		{"overflow capped", []string{"max-age=99999999999999999999999"}, with(func(d *directives) { d.maxAge = maxDelta * s })},
		{"just above cap", []string{"s-maxage=2147483648"}, with(func(d *directives) { d.sMaxAge = maxDelta * s })},
		{"at cap", []string{"s-maxage=2147483647"}, with(func(d *directives) { d.sMaxAge = maxDelta * s })},
		{"leading zeros", []string{"max-age=0060"}, with(func(d *directives) { d.maxAge = 60 * s })},
		{"max-stale without value", []string{"max-stale"}, with(func(d *directives) { d.maxStaleAny = true })},
		{"max-stale with value", []string{"max-stale=30"}, with(func(d *directives) { d.maxStale = 30 * s })},
		{"unknown directives ignored", []string{"foo, bar=baz, x-y=\"q\", max-age=3"}, with(func(d *directives) { d.maxAge = 3 * s })},
		{"garbage bytes", []string{"\x00\xff=;;\"", "==,=,"}, none},
		{"unterminated quote swallows the rest", []string{`no-cache="abc, max-age=5`}, with(func(d *directives) { d.noCache = true })},
		{"no-store and max-age together", []string{"no-store, max-age=60"}, with(func(d *directives) { d.noStore = true; d.maxAge = 60 * s })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseDirectives(tc.values)
			if got != tc.want {
				t.Errorf("parseDirectives(%q)\n got %+v\nwant %+v", tc.values, got, tc.want)
			}
		})
	}
}

func TestParseDeltaSeconds(t *testing.T) {
	cases := map[string]int64{
		"":                      0,
		"0":                     0,
		"1":                     1,
		"86400":                 86400,
		"2147483647":            maxDelta,
		"2147483648":            maxDelta,
		"9223372036854775807":   maxDelta,
		"9223372036854775808":   maxDelta,
		"123456789012345678901": maxDelta,
		"-1":                    0,
		"1e3":                   0,
		" 5":                    0,
		"5 ":                    0,
		"0x10":                  0,
		"٣":                     0, // Arabic-Indic digit: not an ASCII digit
	}
	for in, want := range cases {
		if got := parseDeltaSeconds(in); got != want {
			t.Errorf("parseDeltaSeconds(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestParseAge(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 42 ", 42 * time.Second, true},
		{"99999999999999999999", maxDelta * time.Second, true},
		{"-3", 0, false},
		{"3s", 0, false},
		{"1.5", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseAge(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseAge(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSanitizeAge: the Age forwarded to clients is the one the cache
// computed with (RFC 9111 §5.1: a list's first member).
func TestSanitizeAge(t *testing.T) {
	cases := []struct {
		in   []string
		want []string // nil: removed
	}{
		{[]string{"42"}, []string{"42"}},
		{[]string{"7200, 0"}, []string{"7200"}},
		{[]string{"7200,0"}, []string{"7200"}},
		{[]string{"5", "9"}, []string{"5"}},
		{[]string{"x, 5"}, nil},
		{[]string{"-1"}, nil},
		{[]string{"99999999999999, 1"}, []string{"2147483648"}},
	}
	for _, tc := range cases {
		h := http.Header{"Age": append([]string(nil), tc.in...)}
		sanitizeAge(h)
		if got := h["Age"]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("sanitizeAge(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSecondsCeil(t *testing.T) {
	cases := []struct {
		in   time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Millisecond, 2},
		{maxDelta * time.Second, maxDelta},
		{(maxDelta + 10) * time.Second, maxDelta},
	}
	for _, tc := range cases {
		if got := secondsCeil(tc.in); got != tc.want {
			t.Errorf("secondsCeil(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
