package cache

import (
	"slices"
	"time"
)

// parseHTTPDate parses an HTTP-date exactly as RFC 9110 §5.6.7 defines it:
//
//	IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//	rfc850-date  Sunday, 06-Nov-94 08:49:37 GMT   (obsolete)
//	asctime-date Sun Nov  6 08:49:37 1994         (obsolete)
//
// Names are case-sensitive, every space is exactly one, every number has
// its fixed number of digits, fields are in range (a day that the month does
// not have is no date; 60 seconds is a leap second). Go's http.ParseTime is
// laxer (doubled spaces, one-digit hours, any case): RFC 9111 §5.3 has a
// cache take an invalid Expires as "already expired", so the difference is
// whether a response is stored. The weekday is checked for syntax only.
//
// now resolves rfc850-date's two-digit year: the year in now's century,
// unless that is more than 50 years after now, then the century before
// (RFC 9110 §5.6.7).
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	switch {
	case len(s) == 29 && s[3] == ',':
		return parseIMFFixdate(s)
	case len(s) == 24 && s[3] == ' ':
		return parseASCTime(s)
	}
	return parseRFC850(s, now)
}

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (time.Time, bool) {
	if !isDayName(s[:3]) || s[3:5] != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(s[5:7])
	mon, ok2 := monthNumber(s[8:11])
	year, ok3 := digits(s[12:16])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return makeDate(year, mon, day, s[17:25])
}

// parseRFC850 parses "Sunday, 06-Nov-94 08:49:37 GMT".
func parseRFC850(s string, now time.Time) (time.Time, bool) {
	comma := -1
	for i := 0; i < len(s) && i < 10; i++ {
		if s[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isLongDayName(s[:comma]) {
		return time.Time{}, false
	}
	r := s[comma:] // ", 06-Nov-94 08:49:37 GMT"
	if len(r) != 24 || r[:2] != ", " || r[4] != '-' || r[8] != '-' || r[11] != ' ' || r[20:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(r[2:4])
	mon, ok2 := monthNumber(r[5:8])
	yy, ok3 := digits(r[9:11])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	year := now.UTC().Year()/100*100 + yy
	t, ok := makeDate(year, mon, day, r[12:20])
	if ok && t.After(now.AddDate(50, 0, 0)) {
		t, ok = makeDate(year-100, mon, day, r[12:20])
	}
	return t, ok
}

// parseASCTime parses "Sun Nov  6 08:49:37 1994" (the day is two digits or
// a space and one digit).
func parseASCTime(s string) (time.Time, bool) {
	if !isDayName(s[:3]) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
		return time.Time{}, false
	}
	mon, ok1 := monthNumber(s[4:7])
	d := s[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok2 := digits(d)
	year, ok3 := digits(s[20:24])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return makeDate(year, mon, day, s[11:19])
}

// makeDate checks the fields and the time-of-day "HH:MM:SS" and builds the
// time in UTC (GMT).
func makeDate(year int, mon time.Month, day int, tod string) (time.Time, bool) {
	if len(tod) != 8 || tod[2] != ':' || tod[5] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := digits(tod[0:2])
	mm, ok2 := digits(tod[3:5])
	ss, ok3 := digits(tod[6:8])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 60 || day < 1 || day > daysIn(mon, year) {
		return time.Time{}, false
	}
	return time.Date(year, mon, day, hh, mm, ss, 0, time.UTC), true
}

// digits parses a fixed-width run of ASCII digits.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func monthNumber(s string) (time.Month, bool) {
	i := slices.Index(months[:], s)
	return time.Month(i + 1), i >= 0
}

var dayNames = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

func isDayName(s string) bool { return slices.Contains(dayNames[:], s) }

var longDayNames = [...]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

func isLongDayName(s string) bool { return slices.Contains(longDayNames[:], s) }
