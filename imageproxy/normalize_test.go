package imageproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy/internal/vipsref"
)

// metadataLeaks lists the metadata fields and byte signatures left in b:
// those of EXIF (GPS), XMP, ICC and a camera maker, and the extra ones
// given.
func metadataLeaks(t *testing.T, b []byte, extra ...string) []string {
	t.Helper()
	fields, _, _, err := vipsref.Fields(b)
	if err != nil {
		t.Fatalf("output does not load: %v", err)
	}
	var bad []string
	for _, f := range fields {
		if strings.HasPrefix(f, "exif") || strings.HasPrefix(f, "xmp") || strings.HasPrefix(f, "iptc") ||
			strings.HasPrefix(f, "icc") || f == "orientation" || strings.Contains(f, "comment") {
			bad = append(bad, f)
		}
	}
	for _, s := range append([]string{"GPS", "Exif\x00\x00", "http://ns.adobe.com", "PENTAX", "ICC_PROFILE"}, extra...) {
		if bytes.Contains(b, []byte(s)) {
			bad = append(bad, fmt.Sprintf("bytes %q", s))
		}
	}
	return bad
}

// pngTextChunks are the PNG chunks that carry metadata, which a normalised
// PNG original must not have either.
var pngTextChunks = []string{"iCCP", "eXIf", "tEXt", "iTXt"}

// Every photo: upright, long side capped and never enlarged, JPEG (PNG
// for the one with alpha), no metadata left, and the output decodes to the
// dimensions reported.
func TestNormalize(t *testing.T) {
	p := newProcessor(t, Config{})
	const side = 1600
	for _, ph := range photos {
		src := readPhoto(t, ph.name)
		r, err := p.Normalize(context.Background(), src, side)
		if err != nil {
			t.Fatalf("%s: %v", ph.name, err)
		}
		wantFormat, wantType := FormatJPEG, SourceJPEG
		if strings.HasSuffix(ph.name, ".png") {
			wantFormat, wantType = FormatPNG, SourcePNG
		}
		if r.Format != wantFormat || Sniff(r.Body) != wantType {
			t.Errorf("%s: format %s, sniffed %s", ph.name, r.Format, Sniff(r.Body))
		}
		long := max(ph.w, ph.h)
		wantLong := min(long, side)
		if max(r.Width, r.Height) != wantLong {
			t.Errorf("%s: %dx%d, want long side %d", ph.name, r.Width, r.Height, wantLong)
		}
		// Upright: the displayed orientation is kept (landscape stays
		// landscape, the orientation-6 photo becomes portrait).
		if (r.Width > r.Height) != (ph.w > ph.h) {
			t.Errorf("%s: %dx%d, displayed %dx%d: orientation lost", ph.name, r.Width, r.Height, ph.w, ph.h)
		}
		info, err := Inspect(r.Body)
		if err != nil {
			t.Fatalf("%s: output: %v", ph.name, err)
		}
		if info.Width != r.Width || info.Height != r.Height || info.Orientation > 1 {
			t.Errorf("%s: output header %+v, reported %dx%d", ph.name, info, r.Width, r.Height)
		}
		if bad := metadataLeaks(t, r.Body, pngTextChunks...); len(bad) > 0 {
			t.Errorf("%s: output keeps %v", ph.name, bad)
		}
	}
}

func TestNormalizeOrientationAndGPS(t *testing.T) {
	p := newProcessor(t, Config{})
	dogs := readPhoto(t, "dogs-exif-orient6-3088x2048.jpg")
	r, err := p.Normalize(context.Background(), dogs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Width != 1358 && r.Width != 1357 || r.Height != DefaultOriginalSide {
		t.Fatalf("orientation-6 photo: %dx%d, want upright ~1358x%d", r.Width, r.Height, DefaultOriginalSide)
	}
	if r.Source.Orientation != 6 {
		t.Fatalf("source info %+v", r.Source)
	}
	gps := readPhoto(t, "wine-gps-2560x3837.jpg")
	if !bytes.Contains(gps, []byte("GPS")) {
		t.Fatal("the test photo has no GPS block: the check cannot fail")
	}
	r, err = p.Normalize(context.Background(), gps, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(r.Body, []byte("GPS")) || bytes.Contains(r.Body, []byte("Exif")) {
		t.Fatal("GPS survived normalisation")
	}
	if Sniff(r.Body) != SourceJPEG || r.Height != DefaultOriginalSide {
		t.Fatalf("wine: %s %dx%d", Sniff(r.Body), r.Width, r.Height)
	}
}

// The same wide-gamut check as for variants: a P3 upload is converted, not
// merely stripped.
func TestNormalizeConvertsToSRGB(t *testing.T) {
	p := newProcessor(t, Config{})
	orig := readPhoto(t, "flower-xmp-iptc-640x427.jpg")
	p3, err := vipsref.ToProfile(orig, "p3")
	if err != nil {
		t.Skipf("this libvips has no built-in P3 profile: %v", err)
	}
	want, err := p.Normalize(context.Background(), orig, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Normalize(context.Background(), p3, 0)
	if err != nil {
		t.Fatal(err)
	}
	cw, cg := meanChroma(t, want.Body), meanChroma(t, got.Body)
	if d := cg - cw; d < -0.03*cw || d > 0.03*cw {
		t.Errorf("P3 upload normalised to chroma %.1f, the sRGB original %.1f", cg, cw)
	}
}

func TestNormalizeRefusals(t *testing.T) {
	p := newProcessor(t, Config{})
	for _, tt := range []struct {
		name string
		src  []byte
		want error
	}{
		{"bomb png", readBomb(t, "bomb-png-30000x30000-1bit.png"), ErrSourceTooLarge},
		{"bomb webp", readBomb(t, "bomb-webp-16383x16383-lossless.webp"), ErrSourceTooLarge},
		{"bomb jpeg truncated", readBomb(t, "bomb-jpeg-30000x30000-truncated.jpg"), ErrCorrupt},
		{"truncated jpeg", func() []byte { b := readPhoto(t, "wine-gps-2560x3837.jpg"); return b[:len(b)/2] }(), ErrCorrupt},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrUnsupported},
		{"empty", nil, ErrUnsupported},
	} {
		start := time.Now()
		_, err := p.Normalize(context.Background(), tt.src, 0)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		// Microseconds when refused from the header, seconds when decoded;
		// the bound leaves room for a loaded machine's stalls.
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: refused after %v", tt.name, took)
		}
	}
	if _, err := p.Normalize(context.Background(), readPhoto(t, "portrait-hopper-512x600.jpg"), -1); !errors.Is(err, ErrBadVariant) {
		t.Errorf("negative side: %v", err)
	}
}

// WebP and HEIF/AVIF uploads (what phones send) become JPEG originals.
func TestNormalizeWebPAndAVIFInput(t *testing.T) {
	p := newProcessor(t, Config{})
	src := readPhoto(t, "dogs-exif-orient6-3088x2048.jpg")
	fs := []Format{FormatWebP}
	if p.SupportsAVIF() {
		fs = append(fs, FormatAVIF)
	}
	for _, f := range fs {
		in, err := p.Transform(context.Background(), src, Variant{Width: 800, Quality: 85, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Normalize(context.Background(), in.Body, 0)
		if err != nil {
			t.Fatalf("%s input: %v", f, err)
		}
		if r.Format != FormatJPEG || Sniff(r.Body) != SourceJPEG || r.Width != in.Width || r.Height != in.Height {
			t.Fatalf("%s input %dx%d → %s %s %dx%d", f, in.Width, in.Height, r.Format, Sniff(r.Body), r.Width, r.Height)
		}
		if bad := metadataLeaks(t, r.Body, pngTextChunks...); len(bad) > 0 {
			t.Fatalf("%s input: output keeps %v", f, bad)
		}
	}
}
