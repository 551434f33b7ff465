package geocache

import (
	"encoding/binary"
	"errors"
	"math"
)

// encodeCell lays out candidates with their unit vectors, so a hit decodes
// without trigonometry: count, then per candidate id, lat, lng, the vector
// (8 bytes each), age (2), gender (length byte + bytes) and Extra (uvarint
// length + bytes).
func encodeCell(cands []Candidate) []byte {
	size := 8
	for _, cd := range cands {
		size += 64 + len(cd.Gender) + len(cd.Extra)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(cands)))
	for _, cd := range cands {
		v := unitVec(cd.Lat, cd.Lng)
		b = binary.LittleEndian.AppendUint64(b, uint64(cd.ID))
		for _, f := range [...]float64{cd.Lat, cd.Lng, v[0], v[1], v[2]} {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(cd.Age))
		g := cd.Gender
		if len(g) > 255 {
			g = g[:255]
		}
		b = append(b, byte(len(g)))
		b = append(b, g...)
		b = binary.AppendUvarint(b, uint64(len(cd.Extra)))
		b = append(b, cd.Extra...)
	}
	return b
}

// minEncodedCandidate is the size of the smallest encoded candidate: id,
// five float64s, age, the gender's length byte and a one-byte Extra length.
const minEncodedCandidate = 8 + 5*8 + 2 + 1 + 1

// errCorruptCell reports an encoded cell that scanCell cannot read.
var errCorruptCell = errors.New("geocache: corrupt cell entry")

// scanCell calls fn (when not nil) with each candidate of an encoded cell,
// its unit vector and the offset of its Extra in b, without allocating
// (Extra aliases b); it returns errCorruptCell for a malformed entry,
// possibly after some calls.
func scanCell(b []byte, fn func(cd Candidate, v vec3, extraAt int)) error {
	all := len(b)
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b))/minEncodedCandidate {
		return errCorruptCell
	}
	b = b[w:]
	for i := uint64(0); i < n; i++ {
		if len(b) < minEncodedCandidate {
			return errCorruptCell
		}
		gl := int(b[50])
		if len(b) < minEncodedCandidate+gl {
			return errCorruptCell
		}
		xl, xw := binary.Uvarint(b[51+gl:])
		if xw <= 0 || xl > uint64(len(b)-51-gl-xw) {
			return errCorruptCell
		}
		if fn != nil {
			f := func(off int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[off:])) }
			cd := Candidate{ID: int64(binary.LittleEndian.Uint64(b)), Lat: f(8), Lng: f(16), Age: int16(binary.LittleEndian.Uint16(b[48:])),
				Gender: internGender(b[51 : 51+gl])}
			x := 51 + gl + xw
			if xl > 0 {
				cd.Extra = b[x : x+int(xl) : x+int(xl)]
			}
			fn(cd, vec3{f(24), f(32), f(40)}, all-len(b)+x)
		}
		b = b[51+gl+xw+int(xl):]
	}
	if len(b) != 0 {
		return errCorruptCell
	}
	return nil
}

// internGender returns the common genders without allocating.
func internGender(b []byte) string {
	for _, g := range [...]string{"woman", "man", "nonbinary", ""} {
		if string(b) == g {
			return g
		}
	}
	return string(b)
}
