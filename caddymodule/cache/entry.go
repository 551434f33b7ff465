package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"time"

	"github.com/spark-edge/spark/tiered"
)

// Kinds of stored record.
const (
	kindResponse byte = 1 // a stored response
	kindVary     byte = 2 // the Vary field list of a primary key
)

// entryVersion is the response layout's version: 2 added the deny list,
// the tags and the authorized-fill flag. A record of another version is a
// miss, never misread (an edge of the previous version reads a version-2
// entry as a miss too, so none serves a deny-listed entry to everyone).
// varyVersion is the Vary record's.
const (
	entryVersion byte = 2
	varyVersion  byte = 1
)

var errCorrupt = errors.New("cache: corrupt entry")

// entry is a stored response with what freshness needs to know about it.
type entry struct {
	status int
	// header holds the fields of an entry made from a response; a decoded
	// entry's stay in raw until fields or copyFields reads them.
	header http.Header
	raw    rawHeader
	body   []byte
	// layer is the tier a lookup found the entry in (not stored).
	layer tiered.Layer

	// stored is when the response was received; age is its corrected
	// initial age then (RFC 9111 §4.2.3).
	stored time.Time
	age    time.Duration
	// fresh is the freshness lifetime for this edge; swr and sie the stale
	// windows (-1: none).
	fresh, swr, sie time.Duration
	// flags
	mustRevalidate bool // must-revalidate, proxy-revalidate or s-maxage
	noCache        bool // must be revalidated before every use
	// authOK: may be served to requests carrying Authorization.
	authOK bool
	// authFill: the request that filled it carried Authorization; it is
	// never served to a request without (defence in depth beside §3.5).
	authFill bool
	// deny: the ids of Spark-Deny-Users; the response is never served to
	// them or to an unknown viewer. Empty: no deny list.
	deny denyList
	// tagBlock: the origin's Cache-Tags (see appendTags), so that an entry
	// refreshed by a 304 is stored under its tags again.
	tagBlock []byte
	// refuseAll (not stored): served to nobody; set on a refreshed entry
	// whose 304 carried an invalid deny list.
	refuseAll bool
}

const (
	flagMustRevalidate = 1 << iota
	flagNoCache
	flagAuthOK
	flagAuthFill
)

// encodeEntry appends the binary form of e to dst. Layout: kind, version,
// status (2), flags (1), stored (8), age, fresh, swr, sie (8 each), header
// count (2), then per header field name and values as length-prefixed
// strings, the deny list and the tag block as length-prefixed strings,
// then the body.
func encodeEntry(dst []byte, e *entry) []byte {
	dst = append(dst, kindResponse, entryVersion)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(e.status))
	var flags byte
	if e.mustRevalidate {
		flags |= flagMustRevalidate
	}
	if e.noCache {
		flags |= flagNoCache
	}
	if e.authOK {
		flags |= flagAuthOK
	}
	if e.authFill {
		flags |= flagAuthFill
	}
	dst = append(dst, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.stored.UnixNano()))
	for _, d := range [...]time.Duration{e.age, e.fresh, e.swr, e.sie} {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(d))
	}
	header := e.fields()
	n := 0
	for _, vs := range header {
		n += len(vs)
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	for name, vs := range header {
		for _, v := range vs {
			dst = appendString(dst, name)
			dst = appendString(dst, v)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.deny)))
	dst = append(dst, e.deny...)
	dst = binary.AppendUvarint(dst, uint64(len(e.tagBlock)))
	dst = append(dst, e.tagBlock...)
	return append(dst, e.body...)
}

const fixedLen = 2 + 2 + 1 + 8 + 4*8 + 2

// maxHeaderValues is the most header values an entry can hold: the count is
// two bytes. A larger header would decode as other fields and a poisoned body.
const maxHeaderValues = 0xffff

// encodable reports whether e fits the entry format.
func (e *entry) encodable() bool {
	n := 0
	for _, vs := range e.fields() {
		n += len(vs)
	}
	return n <= maxHeaderValues && e.status >= 100 && e.status <= 999
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEntry parses b (which it may keep referencing). The header block
// is checked but not decoded: a hit decodes it straight into the response
// header (copyFields), other uses into the entry's own map (fields). Its
// values share one string and one slice backing array, so a hit costs a
// handful of allocations whatever the number of fields.
func decodeEntry(b []byte) (*entry, error) {
	if len(b) < fixedLen || b[0] != kindResponse || b[1] != entryVersion {
		return nil, errCorrupt
	}
	eb := new(entryAlloc) // the entry and its first header values, one allocation
	e := &eb.e
	e.status = int(binary.LittleEndian.Uint16(b[2:]))
	if e.status < 100 || e.status > 999 {
		return nil, errCorrupt // would make WriteHeader panic
	}
	flags := b[4]
	e.mustRevalidate = flags&flagMustRevalidate != 0
	e.noCache = flags&flagNoCache != 0
	e.authOK = flags&flagAuthOK != 0
	e.authFill = flags&flagAuthFill != 0
	e.stored = time.Unix(0, int64(binary.LittleEndian.Uint64(b[5:])))
	off := 13
	durs := [...]*time.Duration{&e.age, &e.fresh, &e.swr, &e.sie}
	for _, d := range durs {
		*d = time.Duration(binary.LittleEndian.Uint64(b[off:]))
		off += 8
	}
	n := int(binary.LittleEndian.Uint16(b[off:]))
	off += 2
	// Find where the header block ends.
	start := off
	for i := 0; i < 2*n; i++ {
		l, w := binary.Uvarint(b[off:])
		if w <= 0 || uint64(len(b)-off-w) < l {
			return nil, errCorrupt
		}
		off += w + int(l)
	}
	e.raw.block = string(b[start:off])
	if n <= len(eb.values) {
		e.raw.values = eb.values[:n:n]
	} else {
		e.raw.values = make([]string, n)
	}
	// The deny list and the tag block are read in place.
	for _, dst := range [...]*[]byte{(*[]byte)(&e.deny), &e.tagBlock} {
		l, w := binary.Uvarint(b[off:])
		if w <= 0 || uint64(len(b)-off-w) < l {
			return nil, errCorrupt
		}
		off += w
		if l > 0 {
			*dst = b[off : off+int(l) : off+int(l)]
		}
		off += int(l)
	}
	e.body = b[off:]
	return e, nil
}

// entryAlloc holds a decoded entry with room for the header values of a
// typical response.
type entryAlloc struct {
	e      entry
	values [8]string
}

// rawHeader is the header block of a decoded entry, as encodeEntry wrote
// it (a name and a value per header value, length-prefixed, the values of
// one field consecutive), and the room its values are decoded into.
type rawHeader struct {
	block  string
	values []string // one per header value; nil: not a decoded entry
}

// decodeInto sets the fields of the block on dst. A field's values are a
// capacity-limited slice of one shared array, so appending to one field
// never clobbers another.
func (raw *rawHeader) decodeInto(dst http.Header) {
	p, first := 0, 0
	var prevName string
	for i := range raw.values {
		var name, v string
		name, p = readString(raw.block, p)
		v, p = readString(raw.block, p)
		raw.values[i] = v
		if i == 0 || name != prevName {
			first, prevName = i, name
		}
		dst[name] = raw.values[first : i+1 : i+1]
	}
}

// fields returns the entry's header fields, decoding a decoded entry's
// once.
func (e *entry) fields() http.Header {
	if e.header == nil && e.raw.values != nil {
		e.header = make(http.Header, len(e.raw.values))
		e.raw.decodeInto(e.header)
	}
	return e.header
}

// copyFields sets the entry's header fields on h (a response's header),
// decoding them there directly when no map was made.
func (e *entry) copyFields(h http.Header) {
	if e.header != nil || e.raw.values == nil {
		for k, v := range e.header {
			h[k] = v
		}
		return
	}
	e.raw.decodeInto(h)
}

func readString(s string, p int) (string, int) {
	var l uint64
	var shift uint
	for {
		c := s[p]
		p++
		l |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	return s[p : p+int(l)], p + int(l)
}

// encodeVary encodes the Vary record stored under a primary key: the field
// names (lower case) and whether variants are keyed by credential.
func encodeVary(fields []string, private bool) []byte {
	b := []byte{kindVary, varyVersion, 0}
	if private {
		b[2] = 1
	}
	for _, f := range fields {
		b = appendString(b, f)
	}
	return b
}

// decodeVary parses a Vary record.
func decodeVary(b []byte) (fields []string, private bool, err error) {
	return decodeVaryAppend(nil, b)
}

// decodeVaryAppend is decodeVary appending the fields to dst, which lets the
// hit path keep them on its stack.
func decodeVaryAppend(dst []string, b []byte) (fields []string, private bool, err error) {
	fields = dst
	if len(b) < 3 || b[0] != kindVary || b[1] != varyVersion {
		return nil, false, errCorrupt
	}
	private = b[2] == 1
	off := 3
	for off < len(b) {
		l, w := binary.Uvarint(b[off:])
		if w <= 0 || uint64(len(b)-off-w) < l {
			return nil, false, errCorrupt
		}
		fields = append(fields, internField(b[off+w:off+w+int(l)]))
		off += w + int(l)
	}
	return fields, private, nil
}

// internField returns the common Vary field names without allocating.
func internField(b []byte) string {
	switch string(b) {
	case "accept-encoding":
		return "accept-encoding"
	case "accept-language":
		return "accept-language"
	case "accept":
		return "accept"
	case "authorization":
		return "authorization"
	case "cookie":
		return "cookie"
	case "origin":
		return "origin"
	case "location":
		return "location"
	}
	return string(b)
}

// appendTags appends the tag block of an entry: each tag as a
// length-prefixed string.
func appendTags(dst []byte, tags []string) []byte {
	for _, t := range tags {
		dst = appendString(dst, t)
	}
	return dst
}

// tags decodes the entry's tag block.
func (e *entry) tags() []string {
	var out []string
	for b := e.tagBlock; len(b) > 0; {
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return out
		}
		out = append(out, string(b[w:w+int(l)]))
		b = b[w+int(l):]
	}
	return out
}
