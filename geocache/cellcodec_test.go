package geocache

import (
	"reflect"
	"testing"
)

func TestCellEncodingRoundTrip(t *testing.T) {
	in := []Candidate{{ID: 1<<40 + 7, Lat: -16.8, Lng: 179.99, Age: 99, Gender: "nonbinary", Extra: []byte("profile\x00bytes")},
		{ID: 2, Lat: 90, Lng: -180, Gender: "custom"},
		{ID: 3, Lat: 1, Lng: 2, Age: 20, Gender: "nonbinary", Extra: []byte("x")}}
	d, err := newDecodedCell("u4pru", encodeCell(in), 0, 0)
	if err != nil || len(d.pts) != len(in) || len(d.genders) != 2 {
		t.Fatalf("decode = %+v, %v", d, err)
	}
	for i := range in {
		if got := d.candidate(i); !reflect.DeepEqual(got, in[i]) || d.pts[i].v != unitVec(in[i].Lat, in[i].Lng) {
			t.Errorf("candidate %d = %+v, want %+v", i, got, in[i])
		}
	}
	b := encodeCell(in)
	for i := 0; i < len(b); i++ {
		if _, err := newDecodedCell("u4pru", b[:i], 0, 0); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
}
