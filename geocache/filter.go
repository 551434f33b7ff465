package geocache

import "slices"

// Filter selects candidates without a call per candidate (see
// NearestMatching): age within [MinAge, MaxAge], gender one of Genders, id
// not Self and not in Exclude.
type Filter struct {
	// MinAge and MaxAge bound the age, both included.
	MinAge, MaxAge int16
	// Genders lists the genders accepted.
	Genders []string
	// Self is the id of the user asking, never returned.
	Self int64
	// Exclude lists ids never returned, sorted ascending.
	Exclude []int64
	// Limit, when positive, promises that the caller takes at most Limit
	// candidates: a point farther than Limit accepted points already seen
	// can never be returned, and is not kept.
	Limit int
}

// genderSet marks which of a cell's genders f accepts.
func (f *Filter) genderSet(genders []string) (set [4]uint64) {
	for i, g := range genders {
		if slices.Contains(f.Genders, g) {
			set[i>>6] |= 1 << (i & 63)
		}
	}
	return set
}

// scan appends the keys of d's points within maxChord2 of q that f accepts.
//
// With f.Limit, bound is a max-heap of the Limit smallest squared chords
// accepted so far; a point beyond its top cannot be among the first Limit
// (ties are kept: the id may order them first).
func (f *Filter) scan(d *decodedCell, q vec3, maxChord2 float64, keys []ckey, bound *[]float64) []ckey {
	genders := f.genderSet(d.genders)
	full := f.Limit > 0 && len(*bound) == f.Limit
	for i := range d.pts {
		p := &d.pts[i]
		if p.age < f.MinAge || p.age > f.MaxAge || genders[p.g>>6]&(1<<(p.g&63)) == 0 || p.id == f.Self {
			continue
		}
		c2 := chord2(q, p.v)
		if c2 > maxChord2 || full && c2 > (*bound)[0] {
			continue
		}
		if _, found := slices.BinarySearch(f.Exclude, p.id); found {
			continue
		}
		keys = append(keys, ckey{c2: c2, id: p.id, i: i})
		if f.Limit > 0 {
			full = pushBound(bound, c2, f.Limit)
		}
	}
	return keys
}

// scanKeep appends the keys of d's points within maxChord2 of q that keep
// (when not nil) accepts; each is materialised for the call.
func scanKeep(d *decodedCell, q vec3, maxChord2 float64, keep func(Candidate) bool) []ckey {
	var keys []ckey
	for i := range d.pts {
		c2 := chord2(q, d.pts[i].v)
		if c2 > maxChord2 || (keep != nil && !keep(d.candidate(i))) {
			continue
		}
		keys = append(keys, ckey{c2: c2, id: d.pts[i].id, i: i})
	}
	return keys
}
