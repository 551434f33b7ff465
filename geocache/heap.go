package geocache

// The heaps of the nearest-first walk, written out for their element types
// rather than through container/heap: they run for every point a scan
// keeps, where an interface call and a boxed element per operation cost
// more than the comparison.

// pushBound adds c2 to the max-heap of the limit smallest values and
// reports whether it holds limit values.
func pushBound(h *[]float64, c2 float64, limit int) bool {
	b := *h
	if len(b) < limit {
		b = append(b, c2)
		for i := len(b) - 1; i > 0; {
			p := (i - 1) / 2
			if b[p] >= b[i] {
				break
			}
			b[p], b[i] = b[i], b[p]
			i = p
		}
		*h = b
		return len(b) == limit
	}
	if c2 >= b[0] {
		return true
	}
	b[0] = c2
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(b) && b[l] > b[m] {
			m = l
		}
		if r < len(b) && b[r] > b[m] {
			m = r
		}
		if m == i {
			return true
		}
		b[i], b[m] = b[m], b[i]
		i = m
	}
}

// ckey orders a cell's point i by squared chord from the query point,
// then id.
type ckey struct {
	c2 float64
	id int64
	i  int
}

// less orders keys by squared chord, then id.
func (a ckey) less(b ckey) bool { return a.c2 < b.c2 || (a.c2 == b.c2 && a.id < b.id) }

// heapifyKeys makes h a min-heap.
func heapifyKeys(h []ckey) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDownKeys(h, i)
	}
}

// siftDownKeys moves h[i] down to its place in the min-heap h.
func siftDownKeys(h []ckey, i int) {
	n := len(h)
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].less(h[m]) {
			m = l
		}
		if r < n && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// popKey removes the least key.
func popKey(h []ckey) []ckey {
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	siftDownKeys(h, 0)
	return h
}

// less orders items by distance; at equal distances a cell to expand
// comes before a candidate, cells by name and candidates by id.
func (a *item) less(b *item) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if (a.expand != "") != (b.expand != "") {
		return a.expand != "" // expand a cell before returning a candidate at the same distance
	}
	if a.expand != "" {
		return a.expand < b.expand
	}
	return a.keys[0].id < b.keys[0].id
}

// itemHeap is the iterator's queue: a min-heap of items (item.less).
type itemHeap []*item

// push adds x.
func (h *itemHeap) push(x *item) {
	*h = append(*h, x)
	i := len(*h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !(*h)[i].less((*h)[p]) {
			break
		}
		(*h)[i], (*h)[p] = (*h)[p], (*h)[i]
		i = p
	}
}

// pop removes and returns the least item; h must not be empty.
func (h *itemHeap) pop() *item {
	old := *h
	n := len(old) - 1
	top := old[0]
	old[0] = old[n]
	*h = old[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && (*h)[l].less((*h)[m]) {
			m = l
		}
		if r < n && (*h)[r].less((*h)[m]) {
			m = r
		}
		if m == i {
			break
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
	return top
}
