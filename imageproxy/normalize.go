package imageproxy

import (
	"context"
	"fmt"
)

// Defaults of Normalize.
const (
	// DefaultOriginalSide caps the long side of a normalised original: the
	// largest variant (Config.MaxWidth's default) still comes from it
	// without enlarging.
	DefaultOriginalSide = 2048
	// NormalizeQuality is the JPEG quality of normalised originals: high
	// enough that the variants made from them lose nothing visible.
	NormalizeQuality = 90
)

// Normalize makes the original to store from an upload, once: it applies
// the byte and header limits (Check), waits for a transform slot like
// Transform, then auto-rotates from the EXIF orientation, converts to sRGB
// from the embedded colour profile, removes every metadata block (EXIF with
// GPS, XMP, IPTC, ICC, comments), caps the long side at maxSide (never
// enlarging; 0 means DefaultOriginalSide) and encodes baseline JPEG at
// NormalizeQuality, or PNG when the image has an alpha channel. The
// Result's Source describes the upload as received.
func (p *Processor) Normalize(ctx context.Context, src []byte, maxSide int) (*Result, error) {
	if maxSide == 0 {
		maxSide = DefaultOriginalSide
	}
	if maxSide < 1 || maxSide > p.cfg.MaxSide {
		return nil, fmt.Errorf("normalize: %w: long side %d, want 1..%d", ErrBadVariant, maxSide, p.cfg.MaxSide)
	}
	info, err := p.Check(src)
	if err != nil {
		return nil, fmt.Errorf("normalize: %w", err)
	}
	r, err := p.inSlot(ctx, 1, func() (*Result, error) {
		out, f, w, h, err := normalize(src, maxSide, needsColourTransform(src, info.Type), NormalizeQuality)
		if err != nil {
			// The header passed the checks: a libvips failure is a decode
			// failure (a damaged file) in practice.
			return nil, fmt.Errorf("%w: libvips: %v", ErrCorrupt, err)
		}
		return &Result{Body: out, Format: f, Width: w, Height: h, Source: info}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("normalize %s %dx%d: %w", info.Type, info.Width, info.Height, err)
	}
	return r, nil
}
