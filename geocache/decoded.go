package geocache

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/mmcloughlin/geohash"
)

// decodedCell is a cell parsed once and shared read-only by every walk
// that reads it, so a hit neither copies the stored bytes out of the store
// nor parses them again. Its points hold no pointers (the garbage collector
// skips them, however many cells are held); a candidate is materialised from
// a point only when a walk looks at it, its Extra aliasing b. It is valid
// while unexpired and while no purge recorded by the store since valid
// touched its key or tags.
type decodedCell struct {
	cell    string
	key     string      // cellKey
	tags    []string    // cellTags
	b       []byte      // the encoded cell (encodeCell)
	pts     []cellPoint // what a scan reads
	more    []cellMore  // the rest, by the same index
	genders []string    // distinct genders of the cell, indexed by cellPoint.g
	expires int64       // unix nanoseconds, the stored entry's expiry
	size    int64       // bytes charged against the budget
	// valid is the store generation up to which no purge touched the cell;
	// it only moves forward.
	valid atomic.Uint64
	// refreshing is set while a background load replaces the expired cell.
	refreshing atomic.Bool

	nbrOnce  sync.Once
	nbrs     []string      // the cells around this one (see neighbors)
	nbrBoxes []geohash.Box // their bounding boxes
}

// neighbors returns the cells around d's cell at its precision and their
// bounding boxes, computed once per decoded cell: a walk expanding the cell
// needs them every time.
func (d *decodedCell) neighbors() ([]string, []geohash.Box) {
	d.nbrOnce.Do(func() {
		d.nbrs = neighbors(d.cell, uint(len(d.cell)))
		d.nbrBoxes = make([]geohash.Box, len(d.nbrs))
		for i, n := range d.nbrs {
			d.nbrBoxes[i] = geohash.BoundingBox(n)
		}
	})
	return d.nbrs, d.nbrBoxes
}

// cellPoint is what a scan of a decodedCell reads of a candidate: 40 bytes,
// so more of them share a cache line than with the fields of cellMore.
type cellPoint struct {
	v   vec3
	id  int64
	age int16
	g   uint8 // index into genders
}

// cellMore is the rest of a candidate, read only for those a scan keeps.
type cellMore struct {
	lat, lng float64
	x, xn    uint32 // Extra is b[x : x+xn]
}

// candidate materialises point i (no allocation).
func (d *decodedCell) candidate(i int) Candidate {
	p, m := &d.pts[i], &d.more[i]
	c := Candidate{ID: p.id, Lat: m.lat, Lng: m.lng, Age: p.age, Gender: d.genders[p.g]}
	if m.xn > 0 {
		c.Extra = d.b[m.x : m.x+m.xn : m.x+m.xn]
	}
	return c
}

// newDecodedCell decodes cell's entry b (encodeCell), which expires at
// expires (unix nanoseconds), read at store generation gen.
func newDecodedCell(cell string, b []byte, expires int64, gen uint64) (*decodedCell, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b))/minEncodedCandidate {
		return nil, errCorruptCell
	}
	d := &decodedCell{cell: cell, key: cellKey(cell), tags: cellTags(cell), b: b, pts: make([]cellPoint, 0, n), more: make([]cellMore, 0, n),
		expires: expires}
	gidx := map[string]uint8{}
	tooMany := false
	err := scanCell(b, func(cd Candidate, v vec3, x int) {
		g, ok := gidx[cd.Gender]
		if !ok {
			if len(d.genders) == 256 { // more distinct genders than a byte indexes
				tooMany = true
				return
			}
			g = uint8(len(d.genders))
			gidx[cd.Gender] = g
			d.genders = append(d.genders, cd.Gender)
		}
		d.pts = append(d.pts, cellPoint{v: v, id: cd.ID, age: cd.Age, g: g})
		d.more = append(d.more, cellMore{lat: cd.Lat, lng: cd.Lng, x: uint32(x), xn: uint32(len(cd.Extra))})
	})
	if err == nil && tooMany {
		err = fmt.Errorf("%w: more than 256 genders", errCorruptCell)
	}
	if err != nil {
		return nil, err
	}
	d.size = int64(len(b)) + int64(len(d.pts))*int64(unsafe.Sizeof(cellPoint{})+unsafe.Sizeof(cellMore{})) + 2*int64(len(cell)) + 256
	d.valid.Store(gen)
	return d, nil
}

// advance records that the cell was still valid at generation gen.
func (d *decodedCell) advance(gen uint64) {
	for {
		v := d.valid.Load()
		if v >= gen || d.valid.CompareAndSwap(v, gen) {
			return
		}
	}
}

// decodedCells holds decoded cells up to a byte budget; past it, arbitrary
// cells are dropped (they are read again from the store on their next use).
type decodedCells struct {
	mu    sync.RWMutex
	m     map[string]*decodedCell
	bytes int64
	max   int64 // <= 0: disabled
}

// get returns the cell's decoded copy, or nil.
func (s *decodedCells) get(cell string) *decodedCell {
	if s.max <= 0 {
		return nil
	}
	s.mu.RLock()
	d := s.m[cell]
	s.mu.RUnlock()
	return d
}

// put keeps d as the cell's decoded copy, dropping other cells to stay
// within the budget; a cell over a quarter of the budget is not kept.
func (s *decodedCells) put(cell string, d *decodedCell) {
	if s.max <= 0 || d.size > s.max/4 {
		return
	}
	s.mu.Lock()
	if old, ok := s.m[cell]; ok {
		delete(s.m, cell)
		s.bytes -= old.size
	}
	for k, old := range s.m {
		if s.bytes+d.size <= s.max {
			break
		}
		delete(s.m, k)
		s.bytes -= old.size
	}
	s.m[cell] = d
	s.bytes += d.size
	s.mu.Unlock()
}

// drop removes d if it is still the cell's entry.
func (s *decodedCells) drop(cell string, d *decodedCell) {
	s.mu.Lock()
	if s.m[cell] == d {
		delete(s.m, cell)
		s.bytes -= d.size
	}
	s.mu.Unlock()
}

// len returns the number of decoded cells held and their bytes.
func (s *decodedCells) len() (int, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m), s.bytes
}

// Decoded reports how many cells are held decoded in process and their
// bytes (see CandidateCacheConfig.DecodedBytes).
func (c *CandidateCache) Decoded() (cells int, bytes int64) { return c.decoded.len() }
