package postgis

import (
	"reflect"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func TestProfileExtraRoundTrip(t *testing.T) {
	in := []store.Profile{
		{Version: 7, Name: "Zoë", Bio: "likes \x00 bytes", Photos: []string{"a.jpg", "b.jpg"}, Uploads: []string{"u1"}},
		{Version: -1},
		{Name: "n", Photos: []string{""}},
	}
	var arena []string
	for _, p := range in {
		var c store.Candidate
		if err := decodeProfileExtra(encodeProfileExtra(p), &c, &arena); err != nil {
			t.Fatalf("decode %+v: %v", p, err)
		}
		got := store.Profile{Version: c.Version, Name: c.Name, Bio: c.Bio, Photos: c.Photos, Uploads: c.Uploads}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip = %+v, want %+v", got, p)
		}
	}
	// Lists carved from the arena do not overlap: appending to one leaves
	// the next candidate's list alone.
	var a, b store.Candidate
	arena = arena[:0]
	_ = decodeProfileExtra(encodeProfileExtra(in[0]), &a, &arena)
	_ = decodeProfileExtra(encodeProfileExtra(in[2]), &b, &arena)
	_ = append(a.Photos, "x")
	if b.Photos[0] != "" {
		t.Fatal("an append to one candidate's photos changed another's")
	}
	full := encodeProfileExtra(in[0])
	for i := 0; i < len(full); i++ {
		var c store.Candidate
		if err := decodeProfileExtra(full[:i], &c, &arena); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
}
