package imageproxy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// Class is a network class: the quantized form of every connection hint.
// Cache keys and variants depend on the class, never on raw hint values.
type Class int

// Network classes, slowest first.
const (
	ClassSlow Class = iota // slow 3G, 2G, Save-Data
	Class3G                // 3G
	ClassFast              // 4G, Wi-Fi, wired
	numClasses
)

// String returns the class name used in configuration: slow, 3g or fast.
func (c Class) String() string {
	switch c {
	case ClassSlow:
		return "slow"
	case Class3G:
		return "3g"
	case ClassFast:
		return "fast"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// ParseClass parses a class name as String writes it.
func ParseClass(s string) (Class, error) {
	for c := ClassSlow; c < numClasses; c++ {
		if strings.EqualFold(s, c.String()) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("imageproxy: unknown network class %q (want slow, 3g or fast)", s)
}

// Header names the edge reads hints from. Native apps send none of
// Chromium's client hints by themselves: the app should send Save-Data
// (when the user asked for it), ECT, Downlink (Mbit/s) and RTT (ms) from the
// platform's connectivity API, Sec-CH-DPR, and Sec-CH-Width with the
// rendered width of the photo in physical pixels.
const (
	HeaderSaveData      = "Save-Data"
	HeaderECT           = "ECT"
	HeaderDownlink      = "Downlink"
	HeaderRTT           = "RTT"
	HeaderDPR           = "Sec-CH-DPR"
	HeaderDPRLegacy     = "DPR"
	HeaderWidth         = "Sec-CH-Width"
	HeaderWidthLegacy   = "Width"
	HeaderViewport      = "Sec-CH-Viewport-Width"
	HeaderViewportOld   = "Viewport-Width"
	HeaderAccept        = "Accept"
	queryWidth          = "w"
	queryQuality        = "q"
	queryFit            = "fit"
	maxHintWidth        = 16384
	maxHintRTT          = time.Minute
	maxHintDownlinkMbps = 100000
)

// AcceptCH is the value of the Accept-CH response header that asks
// browsers for the hints the plan uses.
const AcceptCH = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width, ECT, RTT, Downlink"

// VaryHeaders are the request fields a variant depends on, for the Vary
// header of responses that leave the edge.
var VaryHeaders = []string{
	HeaderAccept, HeaderSaveData, HeaderECT, HeaderRTT, HeaderDownlink,
	HeaderDPR, HeaderDPRLegacy, HeaderWidth, HeaderWidthLegacy, HeaderViewport, HeaderViewportOld,
}

// Hints are the parsed request hints. Zero values mean "not sent"; values
// out of range are dropped by ParseHints.
type Hints struct {
	SaveData      bool
	ECT           string        // slow-2g, 2g, 3g or 4g
	DownlinkMbps  float64       // Downlink, Mbit/s
	RTT           time.Duration // RTT hint (HTTP-level round trip)
	MeasuredRTT   time.Duration // the edge's own measurement (TCP_INFO), a fallback
	DPR           float64
	Width         int // Sec-CH-Width / Width: physical pixels
	ViewportWidth int // Sec-CH-Viewport-Width: CSS pixels
	QueryWidth    int // ?w=
	QueryQuality  int // ?q=
	Square        bool
	AcceptAVIF    bool
	AcceptWebP    bool
}

// ParseHints reads hints from request headers and the query (?w=, ?q=,
// ?fit=cover for a square, smart-cropped thumbnail). It never fails:
// malformed or out-of-range values are ignored.
func ParseHints(h http.Header, query url.Values) Hints {
	var hs Hints
	hs.SaveData = strings.EqualFold(strings.TrimSpace(h.Get(HeaderSaveData)), "on")
	switch ect := strings.ToLower(unquote(h.Get(HeaderECT))); ect {
	case "slow-2g", "2g", "3g", "4g":
		hs.ECT = ect
	}
	if v, ok := parseFloat(h.Get(HeaderDownlink), 0, maxHintDownlinkMbps); ok {
		hs.DownlinkMbps = v
	}
	if v, ok := parseFloat(h.Get(HeaderRTT), 0, float64(maxHintRTT/time.Millisecond)); ok {
		hs.RTT = time.Duration(v * float64(time.Millisecond))
	}
	if v, ok := parseFloat(first(h, HeaderDPR, HeaderDPRLegacy), 0.5, 8); ok {
		hs.DPR = v
	}
	if v, ok := parseInt(first(h, HeaderWidth, HeaderWidthLegacy), 1, maxHintWidth); ok {
		hs.Width = v
	}
	if v, ok := parseInt(first(h, HeaderViewport, HeaderViewportOld), 1, maxHintWidth); ok {
		hs.ViewportWidth = v
	}
	if v, ok := parseInt(query.Get(queryWidth), 1, maxHintWidth); ok {
		hs.QueryWidth = v
	}
	if v, ok := parseInt(query.Get(queryQuality), 1, 100); ok {
		hs.QueryQuality = v
	}
	hs.Square = strings.EqualFold(query.Get(queryFit), "cover")
	hs.AcceptAVIF, hs.AcceptWebP = acceptsImage(h.Values(HeaderAccept))
	return hs
}

func first(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

func parseFloat(s string, lo, hi float64) (float64, bool) {
	s = unquote(s)
	if s == "" || len(s) > 32 {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

func parseInt(s string, lo, hi int) (int, bool) {
	v, ok := parseFloat(s, float64(lo), float64(hi))
	if !ok {
		return 0, false
	}
	return int(math.Ceil(v)), true
}

// acceptsImage reports whether Accept values accept image/avif and
// image/webp with a non-zero weight (contract.QValue: RFC 9110's q, so a
// malformed one weighs 0). Wildcards do not count: browsers name the modern
// formats they decode.
func acceptsImage(values []string) (avif, webp bool) {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "image/avif" && name != "image/webp" {
				continue
			}
			if contract.QValue(params) == 0 {
				continue
			}
			if name == "image/avif" {
				avif = true
			} else {
				webp = true
			}
		}
	}
	return avif, webp
}

// Budget is the width and quality a network class gets.
type Budget struct {
	Width   int
	Quality int
}

// Plan turns hints into a Variant. The zero Plan is not usable; start from
// DefaultPlan.
type Plan struct {
	// Sizes are the widths variants are made in, ascending. Every width a
	// Variant has is one of them.
	Sizes []int
	// Budgets holds the width and quality of each class, by Class.
	Budgets [numClasses]Budget
	// DefaultClass applies when the request carries no network hint and
	// the edge measured no RTT.
	DefaultClass Class
	// SlowRTT and ThreeGRTT: an RTT at or above them puts the request in
	// the slow or 3G class (Chromium's ECT thresholds: 1400 ms, 270 ms).
	SlowRTT, ThreeGRTT time.Duration
	// SlowDownlink and ThreeGDownlink (Mbit/s): a downlink below them puts
	// the request in the slow or 3G class.
	SlowDownlink, ThreeGDownlink float64
	// Formats are the output formats offered, best first; JPEG must be
	// one of them (every client takes it).
	Formats []Format
}

// DefaultPlan is the plan's table: slow 3G → 200 px q60, 3G → 400 px q75,
// fast → 800 px q85; AVIF, then WebP, then JPEG.
func DefaultPlan() Plan {
	return Plan{
		Sizes: []int{100, 200, 400, 800},
		Budgets: [numClasses]Budget{
			ClassSlow: {Width: 200, Quality: 60},
			Class3G:   {Width: 400, Quality: 75},
			ClassFast: {Width: 800, Quality: 85},
		},
		DefaultClass:   Class3G,
		SlowRTT:        1400 * time.Millisecond,
		ThreeGRTT:      270 * time.Millisecond,
		SlowDownlink:   0.7,
		ThreeGDownlink: 2,
		Formats:        []Format{FormatAVIF, FormatWebP, FormatJPEG},
	}
}

// Validate checks the plan: sizes ascending and positive, every budget
// width one of the sizes, qualities in 1..100, JPEG among the formats.
func (p *Plan) Validate() error {
	if len(p.Sizes) == 0 {
		return errors.New("imageproxy: plan has no sizes")
	}
	for i, s := range p.Sizes {
		if s < 1 || s > maxHintWidth || (i > 0 && s <= p.Sizes[i-1]) {
			return fmt.Errorf("imageproxy: sizes must be ascending widths in 1..%d, got %v", maxHintWidth, p.Sizes)
		}
	}
	for c, b := range p.Budgets {
		if !slices.Contains(p.Sizes, b.Width) {
			return fmt.Errorf("imageproxy: %s width %d is not one of the sizes %v", Class(c), b.Width, p.Sizes)
		}
		if b.Quality < 1 || b.Quality > 100 {
			return fmt.Errorf("imageproxy: %s quality %d is outside 1..100", Class(c), b.Quality)
		}
	}
	if p.DefaultClass < 0 || p.DefaultClass >= numClasses {
		return fmt.Errorf("imageproxy: invalid default class %d", p.DefaultClass)
	}
	if p.SlowRTT < p.ThreeGRTT || p.ThreeGRTT <= 0 {
		return fmt.Errorf("imageproxy: RTT thresholds slow %v ≥ 3g %v > 0 required", p.SlowRTT, p.ThreeGRTT)
	}
	if p.SlowDownlink > p.ThreeGDownlink || p.SlowDownlink <= 0 {
		return fmt.Errorf("imageproxy: downlink thresholds 0 < slow %g ≤ 3g %g required", p.SlowDownlink, p.ThreeGDownlink)
	}
	if !slices.Contains(p.Formats, FormatJPEG) {
		return errors.New("imageproxy: JPEG must be one of the formats")
	}
	for _, f := range p.Formats {
		if _, err := ParseFormat(f.String()); err != nil {
			return err
		}
	}
	return nil
}

// Qualities returns the distinct budget qualities, ascending: the values an
// explicit ?q= snaps to.
func (p *Plan) Qualities() []int {
	var qs []int
	for _, b := range p.Budgets {
		qs = append(qs, b.Quality)
	}
	slices.Sort(qs)
	return slices.Compact(qs)
}

// Classify quantizes the hints into a network class: the slowest class any
// hint indicates. Save-Data means slow. With no hint at all the edge's
// measured RTT decides, and without that DefaultClass.
func (p *Plan) Classify(h Hints) Class {
	c, any := ClassFast, false
	lower := func(k Class) {
		any = true
		c = min(c, k)
	}
	if h.SaveData {
		lower(ClassSlow)
	}
	switch h.ECT {
	case "slow-2g", "2g":
		lower(ClassSlow)
	case "3g":
		lower(Class3G)
	case "4g":
		lower(ClassFast)
	}
	if h.RTT > 0 {
		lower(p.rttClass(h.RTT))
	}
	if h.DownlinkMbps > 0 {
		switch {
		case h.DownlinkMbps < p.SlowDownlink:
			lower(ClassSlow)
		case h.DownlinkMbps < p.ThreeGDownlink:
			lower(Class3G)
		default:
			lower(ClassFast)
		}
	}
	if any {
		return c
	}
	if h.MeasuredRTT > 0 {
		return p.rttClass(h.MeasuredRTT)
	}
	return p.DefaultClass
}

func (p *Plan) rttClass(rtt time.Duration) Class {
	switch {
	case rtt >= p.SlowRTT:
		return ClassSlow
	case rtt >= p.ThreeGRTT:
		return Class3G
	}
	return ClassFast
}

// Choose picks the variant for the hints. The class budget sets width and
// quality; a layout hint (Sec-CH-Width, or Viewport-Width × DPR) lowers the
// width to the smallest size that covers it; explicit ?w= and ?q= override
// both and snap to the configured sizes and qualities. The format is the
// first of formats (the plan's, filtered by what the encoder supports) the
// client accepts.
func (p *Plan) Choose(h Hints, formats []Format) Variant {
	b := p.Budgets[p.Classify(h)]
	v := Variant{Width: b.Width, Quality: b.Quality, Square: h.Square, Format: FormatJPEG}
	want := h.Width
	if want == 0 && h.ViewportWidth > 0 {
		dpr := h.DPR
		if dpr == 0 {
			dpr = 1
		}
		want = int(math.Ceil(float64(h.ViewportWidth) * dpr))
	}
	if want > 0 {
		v.Width = min(v.Width, p.snapWidth(want))
	}
	if h.QueryWidth > 0 {
		v.Width = p.snapWidth(h.QueryWidth)
	}
	if h.QueryQuality > 0 {
		v.Quality = snapNearest(p.Qualities(), h.QueryQuality)
	}
	for _, f := range formats {
		if f == FormatJPEG || (f == FormatAVIF && h.AcceptAVIF) || (f == FormatWebP && h.AcceptWebP) {
			v.Format = f
			break
		}
	}
	return v
}

// snapWidth returns the smallest size ≥ w, or the largest size.
func (p *Plan) snapWidth(w int) int {
	for _, s := range p.Sizes {
		if s >= w {
			return s
		}
	}
	return p.Sizes[len(p.Sizes)-1]
}

func snapNearest(vals []int, x int) int {
	best := vals[0]
	for _, v := range vals[1:] {
		if abs(v-x) < abs(best-x) || (abs(v-x) == abs(best-x) && v > best) {
			best = v
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Allows reports whether v is a variant the plan can produce, for values
// that arrive from elsewhere (a request header set by an earlier handler).
func (p *Plan) Allows(v Variant) bool {
	return slices.Contains(p.Sizes, v.Width) && slices.Contains(p.Qualities(), v.Quality) &&
		slices.Contains(p.Formats, v.Format)
}

// Variant is one rendition of a photo: the unit of caching.
type Variant struct {
	Width   int // maximum width; height follows the aspect ratio, at most 2× the width
	Quality int
	Format  Format
	Square  bool // Width×Width, smart-cropped (libvips attention)
}

// String returns the canonical form, e.g. "w400-q75-webp" or
// "w200-q60-jpeg-sq": the value of the normalized variant header.
func (v Variant) String() string {
	s := "w" + strconv.Itoa(v.Width) + "-q" + strconv.Itoa(v.Quality) + "-" + v.Format.String()
	if v.Square {
		s += "-sq"
	}
	return s
}

// ParseVariant parses the canonical form String returns; anything else is
// an error.
func ParseVariant(s string) (Variant, error) {
	bad := func() (Variant, error) { return Variant{}, fmt.Errorf("imageproxy: malformed variant %q", s) }
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts) > 4 || len(s) > 32 {
		return bad()
	}
	var v Variant
	var ok bool
	if v.Width, ok = strictInt(parts[0], "w", maxHintWidth); !ok {
		return bad()
	}
	if v.Quality, ok = strictInt(parts[1], "q", 100); !ok {
		return bad()
	}
	f, err := ParseFormat(parts[2])
	if err != nil || f.String() != parts[2] {
		return bad()
	}
	v.Format = f
	if len(parts) == 4 {
		if parts[3] != "sq" {
			return bad()
		}
		v.Square = true
	}
	return v, nil
}

func strictInt(s, prefix string, hi int) (int, bool) {
	d, ok := strings.CutPrefix(s, prefix)
	if !ok || d == "" || len(d) > 5 || d[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= hi
}
