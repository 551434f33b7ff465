package origin

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/spark-edge/spark/origin/store"
)

// The suggestions list is the origin's hottest response; it is written by
// hand rather than through encoding/json (which reflects over every field
// of every item). The output is byte for byte what encoding/json writes for
// suggestionItem (FuzzSuggestionsJSON checks it).

// DistanceKm is the distance_km shown for a candidate distanceM metres away
// (between the two users' stored cell centres): whole kilometres below
// 10 km, never below 1; 5 km steps below 50 km; 10 km steps beyond. Each
// rounds to the nearest step, so a reading tells at best which band a
// cell is in, never metres.
func DistanceKm(distanceM float64) int64 {
	km := distanceM / 1000
	switch {
	case km < 10:
		return max(1, int64(math.Round(km)))
	case km < 50:
		return 5 * int64(math.Round(km/5))
	default:
		return 10 * int64(math.Round(km/10))
	}
}

// fieldSet is a set of suggestionFields, by index.
type fieldSet uint8

func newFieldSet(fields []string) fieldSet {
	var set fieldSet
	for _, f := range fields {
		for i, a := range suggestionFields {
			if f == a {
				set |= 1 << i
			}
		}
	}
	return set
}

func (s fieldSet) has(i int) bool { return s&(1<<i) != 0 }

// appendSuggestions appends {"suggestions":[...]} and a newline.
func appendSuggestions(b []byte, cs []store.Candidate, fields fieldSet) []byte {
	b = append(b, `{"suggestions":[`...)
	for i := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSuggestion(b, &cs[i], fields)
	}
	return append(b, "]}\n"...)
}

// appendSuggestion writes one item with the selected fields, in the order of
// suggestionFields (id, name, age, gender, bio, distance_km, photos).
func appendSuggestion(b []byte, c *store.Candidate, fields fieldSet) []byte {
	b = append(b, '{')
	sep := func(b []byte, key string) []byte {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	for i, f := range suggestionFields {
		if !fields.has(i) {
			continue
		}
		b = sep(b, f)
		switch f {
		case "id":
			b = strconv.AppendInt(b, c.ID, 10)
		case "name":
			b = appendJSONString(b, c.Name)
		case "age":
			b = strconv.AppendInt(b, int64(c.Age), 10)
		case "gender":
			b = appendJSONString(b, c.Gender)
		case "bio":
			b = appendJSONString(b, TruncateRunes(c.Bio, ListBioRunes))
		case "distance_km":
			b = strconv.AppendInt(b, DistanceKm(c.DistanceM), 10)
		case "photos":
			b = append(b, '[')
			for j, p := range photoList(c.Profile) {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, p)
			}
			b = append(b, ']')
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string escaped as encoding/json does:
// quotes, backslashes and control characters; <, > and & (HTML-safe);
// U+2028 and U+2029; invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
