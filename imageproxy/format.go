package imageproxy

import (
	"fmt"
	"strings"
)

// Format is an output image format.
type Format int

// Output formats. FormatPNG is only written by Normalize, for originals
// with an alpha channel; variants are never PNG (ParseFormat refuses it).
const (
	FormatJPEG Format = iota
	FormatWebP
	FormatAVIF
	FormatPNG
)

// String returns the format's short name: jpeg, webp, avif or png.
func (f Format) String() string {
	switch f {
	case FormatJPEG:
		return "jpeg"
	case FormatWebP:
		return "webp"
	case FormatAVIF:
		return "avif"
	case FormatPNG:
		return "png"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// ContentType returns the MIME type of the format.
func (f Format) ContentType() string {
	return "image/" + f.String()
}

// ParseFormat parses a format name (jpeg, jpg, webp, avif).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "jpeg", "jpg":
		return FormatJPEG, nil
	case "webp":
		return FormatWebP, nil
	case "avif":
		return FormatAVIF, nil
	}
	return 0, fmt.Errorf("imageproxy: unknown output format %q (want avif, webp or jpeg)", s)
}
