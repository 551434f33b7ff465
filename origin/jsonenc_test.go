package origin

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

// The reference for appendSuggestions: the same list through encoding/json.

// suggestionItem is one suggestion as encoding/json would send it: only the
// selected fields are set, nil ones are left out.
type suggestionItem struct {
	ID         *int64    `json:"id,omitempty"`
	Name       *string   `json:"name,omitempty"`
	Age        *int16    `json:"age,omitempty"`
	Gender     *string   `json:"gender,omitempty"`
	Bio        *string   `json:"bio,omitempty"`
	DistanceKm *int64    `json:"distance_km,omitempty"`
	Photos     *[]string `json:"photos,omitempty"`
}

// shapeCandidate selects fields of c for a list view (bio truncated). The
// item points into c and into the returned strings; c must outlive it.
func shapeCandidate(c *store.Candidate, fields []string) suggestionItem {
	var out suggestionItem
	for _, f := range fields {
		switch f {
		case "id":
			out.ID = &c.ID
		case "name":
			out.Name = &c.Name
		case "age":
			out.Age = &c.Age
		case "gender":
			out.Gender = &c.Gender
		case "bio":
			bio := TruncateRunes(c.Bio, ListBioRunes)
			out.Bio = &bio
		case "distance_km":
			km := referenceDistanceKm(c.DistanceM)
			out.DistanceKm = &km
		case "photos":
			photos := photoList(c.Profile)
			out.Photos = &photos
		}
	}
	return out
}

// referenceDistanceKm buckets a distance as the API promises, written
// apart from DistanceKm: the step of the band the distance falls in, the
// nearest multiple of it, and never below 1 km.
func referenceDistanceKm(m float64) int64 {
	km := m / 1000
	step := 1.0
	if km >= 50 {
		step = 10
	} else if km >= 10 {
		step = 5
	}
	return int64(math.Max(1, step*math.Round(km/step)))
}

func referenceSuggestions(t testing.TB, cs []store.Candidate, fields []string) []byte {
	items := make([]suggestionItem, len(cs))
	for i := range cs {
		items[i] = shapeCandidate(&cs[i], fields)
	}
	b, err := json.Marshal(struct {
		Suggestions []suggestionItem `json:"suggestions"`
	}{items})
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// fieldsOf returns the fields a set names, in suggestionFields order.
func fieldsOf(set fieldSet) []string {
	var out []string
	for i, f := range suggestionFields {
		if set.has(i) {
			out = append(out, f)
		}
	}
	return out
}

func TestAppendSuggestionsMatchesEncodingJSON(t *testing.T) {
	cs := []store.Candidate{
		{Profile: store.Profile{ID: 7, Name: `Zoë "Z" <b>&`, Age: 29, Gender: "woman", Bio: "line\nbreak\ttab\u2028sep\x01\x7f" + string([]byte{0xff, 'x'}),
			Photos: []string{"https://cdn.example/a.jpg"}, Uploads: []string{"u1"}}, DistanceM: 1499.9},
		{Profile: store.Profile{ID: 8, Name: "", Age: 0, Bio: string(make([]rune, 400))}, DistanceM: 0},
	}
	for _, fields := range [][]string{defaultSuggestionFields, suggestionFields, {"photos", "id"}, {"distance_km"}} {
		want := referenceSuggestions(t, cs, fields)
		got := appendSuggestions(nil, cs, newFieldSet(fields))
		if !bytes.Equal(got, want) {
			t.Errorf("fields %v:\n got %s\nwant %s", fields, got, want)
		}
	}
	if got, want := appendSuggestions(nil, nil, newFieldSet(defaultSuggestionFields)), "{\"suggestions\":[]}\n"; string(got) != want {
		t.Errorf("empty list = %q, want %q", got, want)
	}
}

func TestDistanceKm(t *testing.T) {
	for _, tc := range []struct {
		m    float64
		want int64
	}{{0, 1}, {499, 1}, {1499, 1}, {1500, 2}, {9499, 9}, {9500, 10}, {9999, 10}, {10000, 10}, {12499, 10},
		{12500, 15}, {17600, 20}, {47499, 45}, {47500, 50}, {49999, 50}, {50000, 50}, {54999, 50}, {55000, 60},
		{123456, 120}, {20015000, 20020}} {
		if got := DistanceKm(tc.m); got != tc.want {
			t.Errorf("DistanceKm(%v) = %d, want %d", tc.m, got, tc.want)
		}
	}
	// Never decreasing with the distance, and always one of the promised
	// values.
	prev := int64(0)
	for m := 0.0; m < 200000; m += 7.3 {
		km := DistanceKm(m)
		if km < prev {
			t.Fatalf("DistanceKm(%v) = %d after %d", m, km, prev)
		}
		if (km >= 10 && km < 50 && km%5 != 0) || (km >= 50 && km%10 != 0) || km < 1 {
			t.Fatalf("DistanceKm(%v) = %d is not a step value", m, km)
		}
		prev = km
	}
}

func FuzzSuggestionsJSON(f *testing.F) {
	f.Add(int64(1), "Ada", "a bio", "woman", "p.jpg", int16(30), 1234.5, uint8(0x3f))
	f.Add(int64(-5), "\u2029<&>", "\xff\xfe\\\"", "", "", int16(-1), math.MaxFloat64/1e10, uint8(0x7f))
	for _, m := range []float64{499.99999999999994, 9499.999999999998, 9500, 47499.99999999999, 47500, 49999.99, 55000} {
		f.Add(int64(2), "B", "", "man", "", int16(40), m, uint8(1<<5))
	}
	f.Fuzz(func(t *testing.T, id int64, name, bio, gender, photo string, age int16, dist float64, mask uint8) {
		if math.IsNaN(dist) || math.IsInf(dist, 0) || math.Abs(dist) > 1e15 {
			return // distances are finite metres
		}
		set := fieldSet(mask & 0x7f)
		cs := []store.Candidate{{Profile: store.Profile{ID: id, Name: name, Age: age, Gender: gender, Bio: bio,
			Photos: []string{"https://elsewhere.example/" + photo}, Uploads: []string{photo}}, DistanceM: dist}}
		want := referenceSuggestions(t, cs, fieldsOf(set))
		if got := appendSuggestions(nil, cs, set); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func BenchmarkSuggestionsJSON(b *testing.B) {
	cs := make([]store.Candidate, 50)
	for i := range cs {
		cs[i] = store.Candidate{Profile: store.Profile{ID: int64(i), Name: "Name Surname", Age: 31, Gender: "woman",
			Bio: "Coffee, climbing and bad puns. Looking for someone to explore the city with."}, DistanceM: float64(i * 130)}
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			appendSuggestions(make([]byte, 0, 64+200*len(cs)), cs, newFieldSet(defaultSuggestionFields))
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			referenceSuggestions(b, cs, defaultSuggestionFields)
		}
	})
}
