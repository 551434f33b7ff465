package imageproxy

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy/internal/vipsref"
)

func newProcessor(t testing.TB, cfg Config) *Processor {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func outputType(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	case len(b) > 12 && string(b[4:12]) == "ftypavif":
		return "avif"
	}
	return "unknown"
}

func formats(p *Processor) []Format {
	fs := []Format{FormatJPEG, FormatWebP, FormatAVIF}
	if !p.SupportsAVIF() {
		fs = fs[:2]
	}
	return fs
}

// Every photo, every plan size: the output has the variant's format, is no
// wider than the size, is never enlarged, keeps the displayed aspect ratio
// (EXIF orientation applied) and decodes to the dimensions reported.
func TestTransformDimensionsAndFormats(t *testing.T) {
	p := newProcessor(t, Config{})
	if !p.SupportsAVIF() {
		t.Log("this libvips cannot write AVIF: AVIF cases skipped")
	}
	for _, ph := range photos {
		src := readPhoto(t, ph.name)
		for _, size := range []int{200, 400, 800} {
			for _, f := range formats(p) {
				if f == FormatAVIF && size != 400 {
					continue // AVIF is slow; one size proves it
				}
				v := Variant{Width: size, Quality: 75, Format: f}
				t.Run(ph.name+"/"+v.String(), func(t *testing.T) {
					r, err := p.Transform(context.Background(), src, v)
					if err != nil {
						t.Fatal(err)
					}
					if got := outputType(r.Body); got != f.String() {
						t.Fatalf("output is %s, want %s", got, f)
					}
					wantW := min(size, ph.w)
					wantH := (ph.h*wantW + ph.w/2) / ph.w
					if r.Width != wantW || abs(r.Height-wantH) > 1 {
						t.Fatalf("output %dx%d, want %dx%d (displayed %dx%d)", r.Width, r.Height, wantW, wantH, ph.w, ph.h)
					}
					_, w, h, err := vipsref.Fields(r.Body)
					if err != nil || w != r.Width || h != r.Height {
						t.Fatalf("decoded %dx%d (%v), reported %dx%d", w, h, err, r.Width, r.Height)
					}
				})
			}
		}
	}
}

func TestOrientationApplied(t *testing.T) {
	p := newProcessor(t, Config{})
	src := readPhoto(t, "dogs-exif-orient6-3088x2048.jpg")
	info, err := Inspect(src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Orientation != 6 || info.Width != 3088 {
		t.Fatalf("header: %+v, want stored 3088 wide with orientation 6", info)
	}
	r, err := p.Transform(context.Background(), src, Variant{Width: 400, Quality: 75, Format: FormatJPEG})
	if err != nil {
		t.Fatal(err)
	}
	if r.Width != 400 || r.Height <= r.Width {
		t.Fatalf("output %dx%d: not upright portrait", r.Width, r.Height)
	}
	fields, _, _, _ := vipsref.Fields(r.Body)
	for _, f := range fields {
		if f == "orientation" || strings.HasPrefix(f, "exif") {
			t.Fatalf("output still has %s: it would be rotated twice", f)
		}
	}
}

// The metadata trap: no output format may carry EXIF (GPS), XMP, IPTC or
// the ICC block. The reference (libvips' WebP saver with strip) shows what
// the check catches.
func TestMetadataStrippedInEveryFormat(t *testing.T) {
	p := newProcessor(t, Config{})
	// "vultilion": the flower photo's rights fields (IPTC, XMP).
	leaky := func(b []byte) []string { return metadataLeaks(t, b, "vultilion") }
	gps := readPhoto(t, "wine-gps-2560x3837.jpg")
	ref, err := vipsref.ThumbnailSave(gps, 400, 800, false, int(FormatWebP), 75, 4)
	if err != nil {
		t.Fatal(err)
	}
	if bad := leaky(ref); !slices.ContainsFunc(bad, func(f string) bool { return strings.HasPrefix(f, "exif-ifd3-GPS") }) {
		t.Fatalf("the check does not see the GPS that libvips' WebP keeps: %v", bad)
	}
	for _, name := range []string{"wine-gps-2560x3837.jpg", "flower-xmp-iptc-640x427.jpg", "rain-pentax-k7-3000x1993.jpg",
		"portrait-hopper-512x600.jpg", "portrait-astronaut-alpha-512x512.png"} {
		src := readPhoto(t, name)
		for _, f := range formats(p) {
			for _, sq := range []bool{false, true} {
				v := Variant{Width: 200, Quality: 60, Format: f, Square: sq}
				r, err := p.Transform(context.Background(), src, v)
				if err != nil {
					t.Fatalf("%s %s: %v", name, v, err)
				}
				if bad := leaky(r.Body); len(bad) > 0 {
					t.Errorf("%s as %s leaks %v", name, v, bad)
				}
			}
		}
	}
}

func TestProgressiveJPEG(t *testing.T) {
	p := newProcessor(t, Config{})
	r, err := p.Transform(context.Background(), readPhoto(t, "rain-pentax-k7-3000x1993.jpg"), Variant{Width: 400, Quality: 75})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.Body, []byte{0xFF, 0xC2}) || bytes.Contains(r.Body, []byte{0xFF, 0xC0, 0x00, 0x11}) {
		t.Fatal("JPEG is not progressive (no SOF2)")
	}
}

func TestQualityFollowsVariant(t *testing.T) {
	p := newProcessor(t, Config{})
	src := readPhoto(t, "bird-6028x3391-q80.jpg")
	for _, f := range formats(p) {
		lo, err := p.Transform(context.Background(), src, Variant{Width: 400, Quality: 60, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		hi, err := p.Transform(context.Background(), src, Variant{Width: 400, Quality: 85, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(lo.Body) >= len(hi.Body) {
			t.Errorf("%s: q60 is %d bytes, q85 %d: quality not applied", f, len(lo.Body), len(hi.Body))
		}
	}
}

func TestSquareSmartCrop(t *testing.T) {
	p := newProcessor(t, Config{})
	for _, tt := range []struct {
		name       string
		size, want int
	}{
		{"rain-pentax-k7-3000x1993.jpg", 200, 200},
		{"dogs-exif-orient6-3088x2048.jpg", 400, 400},
		{"portrait-hopper-512x600.jpg", 800, 512}, // squared at its short side, not enlarged
	} {
		r, err := p.Transform(context.Background(), readPhoto(t, tt.name), Variant{Width: tt.size, Quality: 75, Square: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Width != tt.want || r.Height != tt.want {
			t.Errorf("%s square %d: %dx%d, want %dx%d", tt.name, tt.size, r.Width, r.Height, tt.want, tt.want)
		}
	}
}

// Transparent PNG to JPEG is flattened on white, not black.
func TestAlphaFlattenedOnWhite(t *testing.T) {
	p := newProcessor(t, Config{})
	r, err := p.Transform(context.Background(), readPhoto(t, "portrait-astronaut-alpha-512x512.png"), Variant{Width: 200, Quality: 85})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	rr, g, b, _ := img.At(2, 2).RGBA()
	if rr>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
		t.Fatalf("transparent corner is (%d,%d,%d), want white", rr>>8, g>>8, b>>8)
	}
}

func TestETagPerVariant(t *testing.T) {
	p := newProcessor(t, Config{})
	src := readPhoto(t, "flower-xmp-iptc-640x427.jpg")
	a, _ := p.Transform(context.Background(), src, Variant{Width: 200, Quality: 60})
	b, _ := p.Transform(context.Background(), src, Variant{Width: 200, Quality: 60})
	c, _ := p.Transform(context.Background(), src, Variant{Width: 400, Quality: 60})
	if a == nil || b == nil || c == nil {
		t.Fatal("transform failed")
	}
	if a.ETag() != b.ETag() || a.ETag() == c.ETag() || !strings.HasPrefix(a.ETag(), `"`) || strings.HasPrefix(a.ETag(), "W/") {
		t.Fatalf("etags %s %s %s: want strong, stable per variant, distinct across variants", a.ETag(), b.ETag(), c.ETag())
	}
}

func rssKB(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// Bombs are refused from their header, fast and without decoding.
func TestBombsRefusedFast(t *testing.T) {
	p := newProcessor(t, Config{})
	for _, tt := range []struct {
		name string
		want error
	}{
		{"bomb-png-30000x30000-1bit.png", ErrSourceTooLarge},
		{"bomb-png-30000x30000-truncated.png", ErrCorrupt},
		{"bomb-webp-16383x16383-lossless.webp", ErrSourceTooLarge},
		{"bomb-jpeg-30000x30000-truncated.jpg", ErrCorrupt},
	} {
		src := readBomb(t, tt.name)
		before := rssKB(t)
		start := time.Now()
		_, err := p.Transform(context.Background(), src, Variant{Width: 800, Quality: 85})
		took := time.Since(start)
		grew := rssKB(t) - before
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		// Refusing from the header takes microseconds and decoding any of
		// these takes seconds and gigabytes: the time bound is loose enough
		// for a stalled goroutine on a loaded machine (-race, other
		// packages' tests) and still far below a decode.
		if took > time.Second || grew > 20<<10 {
			t.Errorf("%s: refused after %v with RSS +%d KB: it was decoded", tt.name, took, grew)
		}
		if code, _ := StatusCode(err); code != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", tt.name, code)
		}
	}
	// The pixel limit holds without the truncation checks too: the complete
	// PNG bomb declares 900 MP.
	if _, err := p.Check(readBomb(t, "bomb-png-30000x30000-1bit.png")); !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("Check: %v", err)
	}
}

func TestCorruptAndUnsupportedRefused(t *testing.T) {
	p := newProcessor(t, Config{})
	wine := readPhoto(t, "wine-gps-2560x3837.jpg")
	png := readPhoto(t, "portrait-astronaut-alpha-512x512.png")
	junkJPEG := append(append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{0x5A}, 2000)...), 0xFF, 0xD9)
	for _, tt := range []struct {
		name string
		src  []byte
		want error
		code int
	}{
		{"truncated jpeg", wine[:len(wine)/2], ErrCorrupt, 422},
		{"truncated png", png[:len(png)-5000], ErrCorrupt, 422},
		{"jpeg markers around junk", junkJPEG, ErrCorrupt, 422},
		{"empty", nil, ErrUnsupported, 415},
		{"text", []byte("hello, world"), ErrUnsupported, 415},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`), ErrUnsupported, 415},
		{"pdf", []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"), ErrUnsupported, 415},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrUnsupported, 415},
	} {
		_, err := p.Transform(context.Background(), tt.src, Variant{Width: 200, Quality: 60})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if code, _ := StatusCode(err); code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.code)
		}
	}
}

func TestSourceLimits(t *testing.T) {
	wine := readPhoto(t, "wine-gps-2560x3837.jpg") // 525 614 bytes, 2560x3837
	for _, tt := range []struct {
		name string
		l    Limits
	}{
		{"bytes", Limits{MaxSourceBytes: 500_000}},
		{"pixels", Limits{MaxSourcePixels: 9_000_000}},
		{"side", Limits{MaxSide: 3000}},
		{"aspect", Limits{MaxAspect: 1.2}},
	} {
		p := newProcessor(t, Config{Limits: tt.l})
		if _, err := p.Transform(context.Background(), wine, Variant{Width: 200, Quality: 60}); !errors.Is(err, ErrSourceTooLarge) {
			t.Errorf("%s limit: %v, want ErrSourceTooLarge", tt.name, err)
		}
	}
	if _, err := New(Config{Limits: Limits{MaxQueue: -1}}); err == nil {
		t.Fatal("negative queue accepted")
	}
	p := newProcessor(t, Config{MaxWidth: 1000})
	if _, err := p.Transform(context.Background(), wine, Variant{Width: 1200, Quality: 60}); !errors.Is(err, ErrBadVariant) {
		t.Fatalf("width over MaxWidth: %v", err)
	}
}

// One slot and a queue of one: a third transform is refused at once with
// ErrBusy (503 + Retry-After); a waiting one times out with ErrTimeout;
// a timed-out transform keeps its slot until libvips is done.
func TestConcurrencyAndQueueBounds(t *testing.T) {
	p := newProcessor(t, Config{Limits: Limits{MaxConcurrent: 1, MaxQueue: 1, Timeout: 5 * time.Second}})
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	p.hold = func() {
		entered <- struct{}{}
		<-release
	}
	src := readPhoto(t, "portrait-hopper-512x600.jpg")
	v := Variant{Width: 200, Quality: 60}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); _, errs[0] = p.Transform(context.Background(), src, v) }()
	<-entered // the first holds the slot
	wg.Add(1)
	go func() { defer wg.Done(); _, errs[1] = p.Transform(context.Background(), src, v) }()
	deadline := time.Now().Add(5 * time.Second)
	for p.waiting.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("second transform never queued")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_, err := p.Transform(context.Background(), src, v)
	if !errors.Is(err, ErrBusy) || time.Since(start) > time.Second {
		t.Fatalf("third transform: %v after %v, want ErrBusy at once", err, time.Since(start))
	}
	if code, retry := StatusCode(err); code != http.StatusServiceUnavailable || retry <= 0 {
		t.Fatalf("busy maps to %d, Retry-After %v", code, retry)
	}
	close(release)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("queued transforms failed: %v", errs)
	}

	// Timeout: the work outlives the caller and keeps the slot.
	p2 := newProcessor(t, Config{Limits: Limits{MaxConcurrent: 1, MaxQueue: 4, Timeout: 50 * time.Millisecond}})
	release2 := make(chan struct{})
	p2.hold = func() { <-release2 }
	if _, err := p2.Transform(context.Background(), src, v); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow transform: %v, want ErrTimeout", err)
	}
	if _, err := p2.Transform(context.Background(), src, v); !errors.Is(err, ErrTimeout) {
		t.Fatalf("transform behind a timed-out one: %v, want ErrTimeout (slot still held)", err)
	}
	close(release2)
	deadline = time.Now().Add(5 * time.Second)
	for !p2.sem.TryAcquire(1) {
		if time.Now().After(deadline) {
			t.Fatal("slot never released after the background work finished")
		}
		time.Sleep(time.Millisecond)
	}
	p2.sem.Release(1)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p3 := newProcessor(t, Config{Limits: Limits{MaxConcurrent: 1}})
	release3 := make(chan struct{})
	defer close(release3)
	p3.hold = func() { <-release3 }
	go p3.Transform(context.Background(), src, v) //nolint:errcheck // occupies the slot
	for p3.sem.TryAcquire(1) {
		p3.sem.Release(1)
		time.Sleep(time.Millisecond)
	}
	if _, err := p3.Transform(ctx, src, v); !errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled caller: %v", err)
	}
}

func TestStripWebPRemovesChunks(t *testing.T) {
	ref, err := vipsref.ThumbnailSave(readPhoto(t, "wine-gps-2560x3837.jpg"), 200, 400, false, int(FormatWebP), 60, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ref, []byte("EXIF")) || !bytes.Contains(ref, []byte("XMP ")) {
		t.Fatal("reference WebP has no EXIF/XMP chunk to strip")
	}
	out, err := stripWebP(ref)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("GPS")) || bytes.Contains(out, []byte("XMP ")) {
		t.Fatal("chunks left")
	}
	if _, w, _, err := vipsref.Fields(out); err != nil || w != 200 {
		t.Fatalf("stripped WebP does not load: %v", err)
	}
	if _, err := stripWebP(ref[:len(ref)-10]); err == nil {
		t.Fatal("truncated WebP accepted")
	}
}

// FuzzInspect: any input is refused or accepted without panicking, and
// stripWebP never panics or grows a file.
func FuzzInspect(f *testing.F) {
	f.Add([]byte("RIFF\x10\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE2, 0x00, 0x10, 'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0, 1, 1, 0xFF, 0xD9})
	f.Add(probePNG)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = needsColourTransform(b, Sniff(b))
		if out, err := stripWebP(b); err == nil && len(out) > len(b) {
			t.Fatalf("stripWebP grew %d → %d bytes", len(b), len(out))
		}
		if Sniff(b) == SourceUnknown {
			if _, err := Inspect(b); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unknown input: %v", err)
			}
		}
	})
}

// meanChroma is the mean of max(R,G,B)-min(R,G,B) over a JPEG's pixels: a
// saturation measure.
func meanChroma(t *testing.T, b []byte) float64 {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sum += float64(max(cr, cg, cb)-min(cr, cg, cb)) / 257
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

// A Display P3 photo is converted to sRGB before its profile is stripped:
// its colours match the sRGB original's, where merely stripping the
// profile (what libvips' thumbnail + strip does) desaturates it.
func TestWideGamutConvertedToSRGB(t *testing.T) {
	p := newProcessor(t, Config{})
	orig := readPhoto(t, "flower-xmp-iptc-640x427.jpg")
	p3, err := vipsref.ToProfile(orig, "p3")
	if err != nil {
		t.Skipf("this libvips has no built-in P3 profile: %v", err)
	}
	if !needsColourTransform(p3, SourceJPEG) || needsColourTransform(orig, SourceJPEG) {
		t.Fatal("profile detection: P3 must need the transform, sRGB must not")
	}
	v := Variant{Width: 400, Quality: 95}
	want, err := p.Transform(context.Background(), orig, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Transform(context.Background(), p3, v)
	if err != nil {
		t.Fatal(err)
	}
	naive, err := vipsref.ThumbnailSave(p3, 400, 800, false, int(FormatJPEG), 95, 0)
	if err != nil {
		t.Fatal(err)
	}
	cw, cg, cn := meanChroma(t, want.Body), meanChroma(t, got.Body), meanChroma(t, naive)
	t.Logf("mean chroma: sRGB original %.1f, P3 converted %.1f, P3 stripped only %.1f", cw, cg, cn)
	if d := cg - cw; d < -0.03*cw || d > 0.03*cw {
		t.Errorf("P3 photo came out with chroma %.1f, the sRGB original %.1f", cg, cw)
	}
	if cn > 0.95*cw {
		t.Errorf("the check cannot fail: stripping alone kept chroma %.1f of %.1f", cn, cw)
	}
}

// HEIF/AVIF originals (what phones upload) are accepted and converted.
func TestAVIFInput(t *testing.T) {
	p := newProcessor(t, Config{})
	if !p.SupportsAVIF() {
		t.Skip("this libvips cannot write AVIF")
	}
	avif, err := p.Transform(context.Background(), readPhoto(t, "dogs-exif-orient6-3088x2048.jpg"), Variant{Width: 800, Quality: 85, Format: FormatAVIF})
	if err != nil {
		t.Fatal(err)
	}
	if Sniff(avif.Body) != SourceHEIF {
		t.Fatalf("AVIF sniffed as %s", Sniff(avif.Body))
	}
	r, err := p.Transform(context.Background(), avif.Body, Variant{Width: 200, Quality: 75, Format: FormatJPEG})
	if err != nil {
		t.Fatal(err)
	}
	if outputType(r.Body) != "jpeg" || r.Width != 200 || r.Height != 302 {
		t.Fatalf("AVIF → JPEG: %s %dx%d", outputType(r.Body), r.Width, r.Height)
	}
}
