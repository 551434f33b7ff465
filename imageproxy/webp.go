package imageproxy

import (
	"encoding/binary"
	"errors"
)

// VP8X feature flags for the metadata chunks.
const (
	vp8xICC  = 0x20
	vp8xEXIF = 0x08
	vp8xXMP  = 0x04
)

// stripWebP removes the EXIF, XMP and ICCP chunks from a WebP file and
// clears their VP8X flags. libvips 8.14's webpsave ignores strip and
// writes an EXIF block of its own even when the image has no metadata left.
func stripWebP(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil, errors.New("strip webp: not a WebP file")
	}
	out := make([]byte, 12, len(b))
	copy(out, b[:12])
	vp8x := -1
	for off := 12; off < len(b); {
		if off+8 > len(b) {
			return nil, errors.New("strip webp: truncated chunk header")
		}
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		end := off + 8 + size + size&1
		if size < 0 || end > len(b) || end < off {
			return nil, errors.New("strip webp: chunk overruns the file")
		}
		switch string(b[off : off+4]) {
		case "EXIF", "XMP ", "ICCP":
		case "VP8X":
			vp8x = len(out)
			out = append(out, b[off:end]...)
		default:
			out = append(out, b[off:end]...)
		}
		off = end
	}
	if vp8x >= 0 && len(out) > vp8x+8 {
		out[vp8x+8] &^= vp8xICC | vp8xEXIF | vp8xXMP
	}
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)-8))
	return out, nil
}
