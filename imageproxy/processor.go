package imageproxy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Limits bound what one original may cost. Zero fields take the defaults
// (DefaultLimits), chosen from the measurements in design/images.md.
type Limits struct {
	MaxSourceBytes    int64         // encoded size of the original
	MaxSourcePixels   int64         // declared width × height
	MaxLosslessPixels int64         // the same for PNG and lossless WebP, which decode fully
	MaxSide           int           // longest declared side
	MaxAspect         float64       // long side / short side
	Timeout           time.Duration // per Transform, queueing included
	MaxConcurrent     int           // transform slots; an AVIF encode takes 2
	MaxQueue          int           // transforms that may wait for a slot; more get ErrBusy
}

// DefaultLimits returns the defaults: 25 MB, 50 MP (25 MP lossless),
// 12,000 px per side, 20:1, 10 s, 2 slots, 16 waiting.
func DefaultLimits() Limits {
	return Limits{
		MaxSourceBytes:    25 << 20,
		MaxSourcePixels:   50_000_000,
		MaxLosslessPixels: 25_000_000,
		MaxSide:           12_000,
		MaxAspect:         20,
		Timeout:           10 * time.Second,
		MaxConcurrent:     2,
		MaxQueue:          16,
	}
}

func (l *Limits) withDefaults() {
	d := DefaultLimits()
	l.MaxSourceBytes = cmp.Or(l.MaxSourceBytes, d.MaxSourceBytes)
	l.MaxSourcePixels = cmp.Or(l.MaxSourcePixels, d.MaxSourcePixels)
	l.MaxLosslessPixels = cmp.Or(l.MaxLosslessPixels, min(d.MaxLosslessPixels, l.MaxSourcePixels))
	l.MaxSide = cmp.Or(l.MaxSide, d.MaxSide)
	l.MaxAspect = cmp.Or(l.MaxAspect, d.MaxAspect)
	l.Timeout = cmp.Or(l.Timeout, d.Timeout)
	l.MaxConcurrent = cmp.Or(l.MaxConcurrent, d.MaxConcurrent)
	l.MaxQueue = cmp.Or(l.MaxQueue, d.MaxQueue)
}

func (l *Limits) validate() error {
	if l.MaxSourceBytes < 0 || l.MaxSourcePixels < 0 || l.MaxLosslessPixels < 0 || l.MaxSide < 0 ||
		l.MaxAspect < 0 || (l.MaxAspect > 0 && l.MaxAspect < 1) || l.Timeout < 0 || l.MaxConcurrent < 0 || l.MaxQueue < 0 {
		return fmt.Errorf("imageproxy: invalid limits %+v", *l)
	}
	return nil
}

// Config configures a Processor.
type Config struct {
	Limits
	// AVIFEffort is libvips' heifsave effort, 0 (fastest) to 9. bimg's
	// default amounts to 9, which takes seconds per photo. Default 2.
	AVIFEffort int
	// WebPEffort is webpsave's effort, 0 to 6. Default 4 (libvips').
	WebPEffort int
	// MaxWidth bounds Variant.Width. Default 2048.
	MaxWidth int
}

// Processor makes variants. It is safe for concurrent use; its limits on
// concurrency and queueing apply to all callers together.
type Processor struct {
	cfg     Config
	sem     *semaphore.Weighted
	waiting atomic.Int64
	avif    bool
	// hold, when set (tests), runs in the slot before the work.
	hold func()
}

// New returns a Processor. It applies the process-wide libvips settings
// once (operation cache off, untrusted loaders blocked) and probes whether
// this libvips build can write AVIF.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Limits.validate(); err != nil {
		return nil, err
	}
	cfg.Limits.withDefaults()
	cfg.AVIFEffort = cmp.Or(cfg.AVIFEffort, 2)
	cfg.WebPEffort = cmp.Or(cfg.WebPEffort, 4)
	cfg.MaxWidth = cmp.Or(cfg.MaxWidth, 2048)
	if cfg.AVIFEffort < 0 || cfg.AVIFEffort > 9 || cfg.WebPEffort < 0 || cfg.WebPEffort > 6 || cfg.MaxWidth < 1 {
		return nil, fmt.Errorf("imageproxy: effort (avif 0..9, webp 0..6) or max width out of range: %d, %d, %d",
			cfg.AVIFEffort, cfg.WebPEffort, cfg.MaxWidth)
	}
	p := &Processor{cfg: cfg, sem: semaphore.NewWeighted(int64(cfg.MaxConcurrent))}
	p.avif = SupportsAVIF()
	return p, nil
}

var (
	avifOnce sync.Once
	avifOK   bool
)

// SupportsAVIF reports whether this process's libvips writes AVIF: it may
// be built with libheif but without an AV1 encoder. The answer is probed
// once, by encoding a 1×1 image, and applies the process-wide libvips
// settings (see New) first.
func SupportsAVIF() bool {
	setupVips()
	avifOnce.Do(func() {
		out, _, _, err := process(probePNG, 8, 8, false, false, FormatAVIF, 50, 9)
		avifOK = err == nil && len(out) > 0
	})
	return avifOK
}

// EncoderFormats returns formats without the ones this libvips cannot
// write, in the same order.
func EncoderFormats(formats []Format) []Format {
	var fs []Format
	for _, f := range formats {
		if f != FormatAVIF || SupportsAVIF() {
			fs = append(fs, f)
		}
	}
	return fs
}

var probePNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82")

// SupportsAVIF reports whether AVIF output works in this build.
func (p *Processor) SupportsAVIF() bool { return p.avif }

// Limits returns the effective limits.
func (p *Processor) Limits() Limits { return p.cfg.Limits }

// Result is a produced variant.
type Result struct {
	Body    []byte
	Format  Format
	Width   int
	Height  int
	Source  SourceInfo
	Elapsed time.Duration // the libvips work alone
}

// ETag returns a strong entity tag for the variant's bytes.
func (r *Result) ETag() string {
	sum := sha256.Sum256(r.Body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Check applies the byte and header limits to an original without
// decoding it. Transform calls it; callers that fetch originals can call it
// early.
func (p *Processor) Check(src []byte) (SourceInfo, error) {
	l := p.cfg.Limits
	if int64(len(src)) > l.MaxSourceBytes {
		return SourceInfo{}, fmt.Errorf("check: %w: %d bytes, limit %d", ErrSourceTooLarge, len(src), l.MaxSourceBytes)
	}
	info, err := Inspect(src)
	if err != nil {
		return info, err
	}
	px := int64(info.Width) * int64(info.Height)
	maxPx := l.MaxSourcePixels
	if info.Lossless {
		maxPx = l.MaxLosslessPixels
	}
	long, short := max(info.Width, info.Height), min(info.Width, info.Height)
	switch {
	case px > maxPx:
		return info, fmt.Errorf("check %s: %w: %dx%d is %d pixels, limit %d", info.Type, ErrSourceTooLarge, info.Width, info.Height, px, maxPx)
	case long > l.MaxSide:
		return info, fmt.Errorf("check %s: %w: side %d, limit %d", info.Type, ErrSourceTooLarge, long, l.MaxSide)
	case float64(long) > l.MaxAspect*float64(short):
		return info, fmt.Errorf("check %s: %w: aspect %dx%d beyond %g:1", info.Type, ErrSourceTooLarge, info.Width, info.Height, l.MaxAspect)
	}
	return info, nil
}

// Transform makes variant v of the original src: checks the limits on the
// header, waits for a slot (ErrBusy when the queue is full), then
// shrinks-on-load, auto-orients, crops, converts to sRGB, strips every
// metadata block and encodes. It returns ErrTimeout when ctx or the
// configured timeout ends first; libvips cannot be interrupted, so the
// work then finishes in the background and keeps its slot until it does.
func (p *Processor) Transform(ctx context.Context, src []byte, v Variant) (*Result, error) {
	if v.Width < 1 || v.Width > p.cfg.MaxWidth || v.Quality < 1 || v.Quality > 100 {
		return nil, fmt.Errorf("transform %s: %w: width 1..%d, quality 1..100", v, ErrBadVariant, p.cfg.MaxWidth)
	}
	if v.Format == FormatAVIF && !p.avif {
		return nil, fmt.Errorf("transform %s: %w: this libvips cannot write AVIF", v, ErrBadVariant)
	}
	if v.Format < FormatJPEG || v.Format > FormatAVIF {
		return nil, fmt.Errorf("transform %s: %w", v, ErrBadVariant)
	}
	info, err := p.Check(src)
	if err != nil {
		return nil, err
	}
	weight := int64(1)
	if v.Format == FormatAVIF {
		weight = min(2, int64(p.cfg.MaxConcurrent))
	}
	r, err := p.inSlot(ctx, weight, func() (*Result, error) { return p.run(src, info, v) })
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("transform %s of %s %dx%d: %w", v, info.Type, info.Width, info.Height, err)
		}
		return nil, fmt.Errorf("transform %s: %w", v, err)
	}
	return r, nil
}

// inSlot runs work in a transform slot of the given weight, under the
// configured timeout: ErrBusy when the queue is full, ErrTimeout when ctx or
// the timeout ends first (the work then finishes in the background and
// keeps its slot until it does).
func (p *Processor) inSlot(ctx context.Context, weight int64, work func() (*Result, error)) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if err := p.acquire(ctx, weight); err != nil {
		return nil, err
	}
	done := make(chan *Result, 1)
	errc := make(chan error, 1)
	go func() {
		defer p.sem.Release(weight)
		if p.hold != nil {
			p.hold()
		}
		start := time.Now()
		r, err := work()
		if err != nil {
			errc <- err
			return
		}
		r.Elapsed = time.Since(start)
		done <- r
	}()
	select {
	case r := <-done:
		return r, nil
	case err := <-errc:
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w after %v: %v", ErrTimeout, p.cfg.Timeout, context.Cause(ctx))
	}
}

func (p *Processor) acquire(ctx context.Context, weight int64) error {
	if p.sem.TryAcquire(weight) {
		return nil
	}
	if p.waiting.Add(1) > int64(p.cfg.MaxQueue) {
		p.waiting.Add(-1)
		return fmt.Errorf("%w: %d transforms running, %d waiting", ErrBusy, p.cfg.MaxConcurrent, p.cfg.MaxQueue)
	}
	defer p.waiting.Add(-1)
	if err := p.sem.Acquire(ctx, weight); err != nil {
		return fmt.Errorf("%w waiting for a slot: %v", ErrTimeout, err)
	}
	return nil
}

// Geometry returns the thumbnail box for v: the width, the height bound,
// and whether to crop. Square variants of a photo smaller than the box are
// squared at its short side rather than enlarged.
func Geometry(info SourceInfo, v Variant) (width, height int, crop bool) {
	if v.Square {
		w, h := info.DisplaySize()
		side := min(v.Width, w, h)
		return side, side, true
	}
	return v.Width, 2 * v.Width, false
}

func (p *Processor) run(src []byte, info SourceInfo, v Variant) (*Result, error) {
	w, h, crop := Geometry(info, v)
	effort := 0
	switch v.Format {
	case FormatAVIF:
		effort = p.cfg.AVIFEffort
	case FormatWebP:
		effort = p.cfg.WebPEffort
	}
	out, ow, oh, err := process(src, w, h, crop, needsColourTransform(src, info.Type), v.Format, v.Quality, effort)
	if err != nil {
		// The input passed the header checks, so a libvips failure here is
		// a decode failure (a damaged file) in practice.
		return nil, fmt.Errorf("%w: libvips: %v", ErrCorrupt, err)
	}
	if v.Format == FormatWebP {
		if out, err = stripWebP(out); err != nil {
			return nil, err
		}
	}
	return &Result{Body: out, Format: v.Format, Width: ow, Height: oh, Source: info}, nil
}
