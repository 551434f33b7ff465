package geocache

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/tiered"
)

// Two origin instances whose candidate caches share a Redis: a cell loaded
// by one is a hit for the other, and a move reported to one invalidates the
// cell for both.
func TestCandidateCacheSharedThroughRedis(t *testing.T) {
	ro := tiered.DefaultRedisOptions(testredis.Shared(t))
	ro.KeyPrefix = testredis.Prefix(t)
	var users atomic.Pointer[[]Candidate]
	users.Store(&[]Candidate{{ID: 1, Lat: 48.8566, Lng: 2.3522, Age: 30, Gender: "woman"}})
	var loads atomic.Int64
	loader := func(_ context.Context, cell string) ([]Candidate, error) {
		loads.Add(1)
		var out []Candidate
		for _, u := range *users.Load() {
			if Cell(u.Lat, u.Lng, uint(len(cell))) == cell {
				out = append(out, u)
			}
		}
		return out, nil
	}
	newInstance := func() *CandidateCache {
		st, err := tiered.New(context.Background(), tiered.Options{Capacity: 16 << 20, MaxEntrySize: 1 << 20, MaxLifetime: time.Minute, Redis: &ro})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		cc, err := NewCandidateCache(CandidateCacheConfig{Loader: loader, Store: st, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	a, b := newInstance(), newInstance()
	ctx := context.Background()
	cell := Cell(48.8566, 2.3522, 5)

	if got, err := a.Get(ctx, cell); err != nil || len(got) != 1 {
		t.Fatalf("a.Get = %v, %v", got, err)
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if got, err := b.Get(ctx, cell); err != nil || len(got) != 1 || got[0].Gender != "woman" || got[0].Age != 30 {
		t.Fatalf("b.Get = %+v, %v", got, err)
	}
	if loads.Load() != 1 {
		t.Fatalf("b reloaded a cell a had stored: loads = %d", loads.Load())
	}

	// A second user moves into the cell; the move is reported to a only.
	users.Store(&[]Candidate{{ID: 1, Lat: 48.8566, Lng: 2.3522, Age: 30, Gender: "woman"}, {ID: 2, Lat: 48.8570, Lng: 2.3530, Age: 33, Gender: "man"}})
	a.Moved("", Cell(48.8570, 2.3530, 7))
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, err := b.Get(ctx, cell)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still sees %d users in the cell 2 s after the move on a", len(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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
