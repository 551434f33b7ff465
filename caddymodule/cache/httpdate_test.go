package cache

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rfc := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC) // RFC 9110's example
	cases := []struct {
		in   string
		want time.Time // zero: invalid
	}{
		// The three forms of RFC 9110 §5.6.7.
		{"Sun, 06 Nov 1994 08:49:37 GMT", rfc},
		{"Sunday, 06-Nov-94 08:49:37 GMT", rfc},
		{"Sun Nov  6 08:49:37 1994", rfc},
		{"Sun Nov 06 08:49:37 1994", rfc}, // date3's 2DIGIT alternative
		{"Thu, 31 Dec 2026 23:59:59 GMT", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"Thu, 31 Dec 2026 23:59:60 GMT", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, // leap second
		{"Mon, 29 Feb 2028 00:00:00 GMT", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"Wed, 01 Jan 2025 00:00:00 GMT", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, // weekday not checked
		// RFC 850 years: this century unless more than 50 years ahead.
		{"Tuesday, 01-Jan-76 00:00:00 GMT", time.Date(2076, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Tuesday, 01-Jan-77 00:00:00 GMT", time.Date(1977, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Friday, 25-Dec-26 00:00:00 GMT", time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)},
		// What http.ParseTime accepts and RFC 9110 does not.
		{"Sun, 06 Nov 1994 8:49:37 GMT", time.Time{}},   // one-digit hour
		{"Sun, 06  Nov 1994 08:49:37 GMT", time.Time{}}, // doubled space
		{"Sun, 6 Nov 1994 08:49:37 GMT", time.Time{}},   // one-digit day
		{"sun, 06 nov 1994 08:49:37 GMT", time.Time{}},  // case
		{"Sun, 06 Nov 1994 08:49:37 gmt", time.Time{}},
		{"Sunday, 06-Nov-94 8:49:37 GMT", time.Time{}},
		{"Sunday,  06-Nov-94 08:49:37 GMT", time.Time{}},
		{"Sun Nov 6 08:49:37 1994", time.Time{}}, // one space, one digit
		{"Sun Nov  6 8:49:37 1994", time.Time{}},
		{"Sun  Nov  6 08:49:37 1994", time.Time{}},
		// Other junk.
		{"0", time.Time{}},
		{"", time.Time{}},
		{"-1", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 +0000", time.Time{}},
		{" Sun, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 GMT ", time.Time{}},
		{"Sun, 31 Nov 1994 08:49:37 GMT", time.Time{}}, // no such day
		{"Sun, 29 Feb 2027 08:49:37 GMT", time.Time{}},
		{"Sun, 00 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 24:00:00 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 23:60:00 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 23:00:61 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08-49-37 GMT", time.Time{}},
		{"Sun, 06 Nov 199a 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Foo 1994 08:49:37 GMT", time.Time{}},
		{"Sund, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06-Nov-94 08:49:37 GMT", time.Time{}}, // short name in the RFC 850 form
		{"Sunday, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", time.Time{}},
	}
	for _, tc := range cases {
		got, ok := parseHTTPDate(tc.in, now)
		if ok != !tc.want.IsZero() || ok && !got.Equal(tc.want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}

// referenceHTTPDate is parseHTTPDate's definition, written differently:
// RFC 9110 §5.6.7's grammar as regular expressions, Go's time.Parse for
// the calendar (once the grammar has made its leniency irrelevant).
var (
	refIMF     = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) ([0-9]{2}:[0-9]{2}:[0-9]{2}) GMT$`)
	refRFC850  = regexp.MustCompile(`^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-([0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2}) GMT$`)
	refASCTime = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{2}| [0-9]) ([0-9]{2}:[0-9]{2}:[0-9]{2}) ([0-9]{4})$`)
)

func referenceHTTPDate(s string, now time.Time) (time.Time, bool) {
	var day, mon, year, tod string
	if m := refIMF.FindStringSubmatch(s); m != nil {
		day, mon, year, tod = m[2], m[3], m[4], m[5]
	} else if m := refASCTime.FindStringSubmatch(s); m != nil {
		day, mon, year, tod = strings.TrimSpace(m[3]), m[2], m[5], m[4]
		if len(day) == 1 {
			day = "0" + day
		}
	} else if m := refRFC850.FindStringSubmatch(s); m != nil {
		yy, _ := strconv.Atoi(m[4])
		y := now.UTC().Year()/100*100 + yy
		t, ok := referenceParts(m[2], m[3], strconv.Itoa(y), m[5])
		if ok && t.After(now.AddDate(50, 0, 0)) {
			t, ok = referenceParts(m[2], m[3], strconv.Itoa(y-100), m[5])
		}
		return t, ok
	} else {
		return time.Time{}, false
	}
	return referenceParts(day, mon, year, tod)
}

func referenceParts(day, mon, year, tod string) (time.Time, bool) {
	for len(year) < 4 {
		year = "0" + year
	}
	leap := strings.HasSuffix(tod, ":60")
	if leap {
		tod = strings.TrimSuffix(tod, "60") + "59"
	}
	t, err := time.Parse("02 Jan 2006 15:04:05", day+" "+mon+" "+year+" "+tod)
	if err != nil {
		return time.Time{}, false
	}
	if leap {
		t = t.Add(time.Second)
	}
	return t, true
}

// FuzzParseHTTPDate checks parseHTTPDate against the reference, and that
// whatever it accepts http.ParseTime reads as the same instant (it is
// stricter, never different).
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"Sun Nov 06 08:49:37 1994", "Sun, 06 Nov 1994 8:49:37 GMT", "Sun, 06  Nov 1994 08:49:37 GMT",
		"Thu, 31 Dec 2026 23:59:60 GMT", "Wednesday, 29-Feb-00 00:00:00 GMT", "Sun, 31 Nov 1994 08:49:37 GMT",
		"0", "", "Sun Nov 6 08:49:37 1994", "Tuesday, 01-Jan-77 00:00:00 GMT",
	} {
		f.Add(s, int64(1796000000))
	}
	f.Fuzz(func(t *testing.T, s string, nowUnix int64) {
		now := time.Unix(int64(uint64(nowUnix)%(1<<37)), 0) // 1970..6325: four-digit years
		got, ok := parseHTTPDate(s, now)
		want, wantOK := referenceHTTPDate(s, now)
		if ok != wantOK || ok && !got.Equal(want) {
			t.Fatalf("parseHTTPDate(%q) = %v, %v; reference %v, %v", s, got, ok, want, wantOK)
		}
		// (Go reads RFC 850 years its own way and has no leap seconds.)
		if ok && !refRFC850.MatchString(s) && !strings.Contains(s, ":60") {
			if lax, err := http.ParseTime(s); err != nil || !lax.Equal(got) {
				t.Fatalf("http.ParseTime(%q) = %v, %v; strict %v", s, lax, err, got)
			}
		}
	})
}
