package geocache

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// pushBound keeps the limit smallest values pushed, its largest on top.
func TestPushBoundKeepsTheSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, limit := range []int{1, 2, 5, 50} {
		var bound, all []float64
		for i := range 500 {
			v := float64(rng.IntN(100)) // repeats: ties
			all = append(all, v)
			if full := pushBound(&bound, v, limit); full != (i+1 >= limit) {
				t.Fatalf("limit %d, %d pushed: full = %v", limit, i+1, full)
			}
			want := slices.Clone(all)
			slices.Sort(want)
			want = want[:min(limit, len(want))]
			got := slices.Clone(bound)
			slices.Sort(got)
			if !slices.Equal(got, want) || bound[0] != want[len(want)-1] {
				t.Fatalf("limit %d, %d pushed: bound %v, want %v with the largest on top", limit, i+1, bound, want)
			}
		}
	}
}

// The key heap pops keys in (squared chord, id) order.
func TestKeyHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for n := range 40 {
		keys := make([]ckey, n)
		for i := range keys {
			keys[i] = ckey{c2: float64(rng.IntN(8)), id: int64(rng.IntN(1000)), i: i}
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b ckey) int {
			if a.less(b) {
				return -1
			}
			if b.less(a) {
				return 1
			}
			return 0
		})
		heapifyKeys(keys)
		for i := range want {
			if keys[0].c2 != want[i].c2 || keys[0].id != want[i].id {
				t.Fatalf("n %d: pop %d = %+v, want %+v", n, i, keys[0], want[i])
			}
			keys = popKey(keys)
		}
	}
}

// The iterator's queue pops items nearest first; at one distance a cell to
// expand before a candidate, cells by name, candidates by id.
func TestItemHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var h itemHeap
	for i := range 300 {
		x := &item{dist: float64(rng.IntN(20))}
		if i%2 == 0 {
			x.expand = Cell(float64(rng.IntN(80)), float64(rng.IntN(170)), 3)
		} else {
			x.keys = []ckey{{id: int64(rng.IntN(1000))}}
		}
		h.push(x)
	}
	for i := range 300 {
		x := h.pop()
		for _, y := range h {
			if y.less(x) {
				t.Fatalf("pop %d = %+v, but %+v is still queued and comes first", i, x, y)
			}
		}
	}
	if len(h) != 0 {
		t.Fatalf("%d items left after popping all that were pushed", len(h))
	}
}
