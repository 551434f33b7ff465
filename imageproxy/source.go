package imageproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/h2non/bimg"
)

// SourceType is an input format the proxy accepts.
type SourceType int

// Accepted input formats. Anything else is ErrUnsupported.
const (
	SourceUnknown SourceType = iota
	SourceJPEG
	SourcePNG
	SourceWebP
	SourceHEIF // HEIC and AVIF, as phones upload them
)

// String returns the type's name.
func (t SourceType) String() string {
	return [...]string{"unknown", "jpeg", "png", "webp", "heif"}[t]
}

// Sniff identifies an input by its magic bytes. Only the formats the proxy
// accepts are recognized; SVG, PDF, GIF, TIFF and the rest are unknown,
// so they never reach libvips' loaders.
func Sniff(b []byte) SourceType {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return SourceJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return SourcePNG
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return SourceWebP
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		switch string(b[8:12]) {
		case "heic", "heix", "heim", "heis", "mif1", "msf1", "avif", "avis":
			return SourceHEIF
		}
	}
	return SourceUnknown
}

// SourceInfo is what the header says about an original.
type SourceInfo struct {
	Type        SourceType
	Width       int // as stored
	Height      int
	Orientation int // EXIF orientation, 1..8 (0 when absent)
	Lossless    bool
}

// DisplaySize is the size the image shows at once EXIF orientation is
// applied.
func (s SourceInfo) DisplaySize() (w, h int) {
	if s.Orientation >= 5 && s.Orientation <= 8 {
		return s.Height, s.Width
	}
	return s.Width, s.Height
}

// Inspect identifies the original, checks that it is complete, and reads
// its header (tens of microseconds: nothing is decoded).
func Inspect(src []byte) (SourceInfo, error) {
	info := SourceInfo{Type: Sniff(src)}
	switch info.Type {
	case SourceUnknown:
		return info, fmt.Errorf("inspect: %w (%d bytes, neither JPEG, PNG, WebP nor HEIF)", ErrUnsupported, len(src))
	case SourceJPEG:
		// The end-of-image marker; a few trailing bytes after it are tolerated.
		if bytes.LastIndex(tail(src, 1024), []byte{0xFF, 0xD9}) < 0 {
			return info, fmt.Errorf("inspect jpeg: %w: no end-of-image marker", ErrCorrupt)
		}
	case SourcePNG:
		if !bytes.Contains(tail(src, 1024), []byte("IEND")) {
			return info, fmt.Errorf("inspect png: %w: no IEND chunk", ErrCorrupt)
		}
	case SourceWebP:
		if n := int64(binary.LittleEndian.Uint32(src[4:8])) + 8; n > int64(len(src)) {
			return info, fmt.Errorf("inspect webp: %w: RIFF declares %d bytes, have %d", ErrCorrupt, n, len(src))
		}
		info.Lossless = bytes.Contains(src[12:min(len(src), 64)], []byte("VP8L"))
	}
	md, err := bimg.Metadata(src)
	if err != nil {
		return info, fmt.Errorf("inspect %s header: %w: %v", info.Type, ErrCorrupt, err)
	}
	info.Width, info.Height = md.Size.Width, md.Size.Height
	info.Orientation = md.Orientation
	if info.Type == SourcePNG {
		info.Lossless = true
	}
	if info.Width <= 0 || info.Height <= 0 {
		return info, fmt.Errorf("inspect %s: %w: header declares %dx%d", info.Type, ErrCorrupt, info.Width, info.Height)
	}
	return info, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
