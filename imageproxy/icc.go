package imageproxy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
)

// needsColourTransform reports whether the original embeds a colour
// profile other than sRGB (a Display P3 phone photo, Adobe RGB…). Those are
// converted to sRGB before the profile is stripped, or they would lose
// saturation; originals without a profile or with an sRGB one skip the
// transform, which costs as much as a fifth of a small variant. HEIF is
// assumed to need it (phones write P3).
func needsColourTransform(src []byte, t SourceType) bool {
	var icc []byte
	switch t {
	case SourceJPEG:
		icc = jpegICC(src)
	case SourcePNG:
		icc = pngICC(src)
	case SourceWebP:
		icc = webpICC(src)
	case SourceHEIF:
		return true
	}
	return len(icc) > 0 && !bytes.Contains(icc, []byte("sRGB"))
}

// jpegICC returns the ICC profile's bytes from the APP2 segments before the
// first scan (concatenated; a profile may span segments).
func jpegICC(b []byte) []byte {
	var icc []byte
	for off := 2; off+4 <= len(b); {
		if b[off] != 0xFF {
			return icc
		}
		marker := b[off+1]
		if marker == 0xFF { // fill byte
			off++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return icc
		}
		if marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) {
			off += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		end := off + 2 + n
		if n < 2 || end > len(b) {
			return icc
		}
		seg := b[off+4 : end]
		if marker == 0xE2 && bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) && len(seg) > 14 {
			icc = append(icc, seg[14:]...)
		}
		off = end
	}
	return icc
}

// pngICC returns the decompressed iCCP profile (at most 1 MiB) of a PNG.
func pngICC(b []byte) []byte {
	for off := 8; off+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off : off+4]))
		typ := string(b[off+4 : off+8])
		end := off + 12 + n
		if n < 0 || end > len(b) || end < off {
			return nil
		}
		switch typ {
		case "iCCP":
			data := b[off+8 : off+8+n]
			i := bytes.IndexByte(data, 0)
			if i < 0 || i+2 > len(data) {
				return nil
			}
			zr, err := zlib.NewReader(bytes.NewReader(data[i+2:]))
			if err != nil {
				return nil
			}
			icc, _ := io.ReadAll(io.LimitReader(zr, 1<<20))
			return icc
		case "IDAT", "IEND":
			return nil
		}
		off = end
	}
	return nil
}

// webpICC returns the ICCP chunk of a WebP.
func webpICC(b []byte) []byte {
	for off := 12; off+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		end := off + 8 + n + n&1
		if n < 0 || end > len(b) || end < off {
			return nil
		}
		if string(b[off:off+4]) == "ICCP" {
			return b[off+8 : off+8+n]
		}
		off = end
	}
	return nil
}
