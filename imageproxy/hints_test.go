package imageproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestChooseFollowsThePlanTable(t *testing.T) {
	p := DefaultPlan()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	all := []Format{FormatAVIF, FormatWebP, FormatJPEG}
	tests := []struct {
		name  string
		h     http.Header
		query string
		rtt   time.Duration
		want  string
	}{
		{"no hints: default class 3G", hdr(), "", 0, "w400-q75-jpeg"},
		{"save-data", hdr("Save-Data", "on"), "", 0, "w200-q60-jpeg"},
		{"save-data wins over 4g", hdr("Save-Data", "on", "ECT", "4g"), "", 0, "w200-q60-jpeg"},
		{"ect slow-2g", hdr("ECT", "slow-2g"), "", 0, "w200-q60-jpeg"},
		{"ect 2g", hdr("ECT", "2g"), "", 0, "w200-q60-jpeg"},
		{"ect 3g", hdr("ECT", "3g"), "", 0, "w400-q75-jpeg"},
		{"ect 4g", hdr("ECT", "4g"), "", 0, "w800-q85-jpeg"},
		{"rtt slow", hdr("RTT", "2000"), "", 0, "w200-q60-jpeg"},
		{"rtt 3g", hdr("RTT", "300"), "", 0, "w400-q75-jpeg"},
		{"rtt fast", hdr("RTT", "50"), "", 0, "w800-q85-jpeg"},
		{"downlink slow", hdr("Downlink", "0.4"), "", 0, "w200-q60-jpeg"},
		{"downlink 3g", hdr("Downlink", "1.5"), "", 0, "w400-q75-jpeg"},
		{"slowest signal wins", hdr("ECT", "4g", "RTT", "50", "Downlink", "1.2"), "", 0, "w400-q75-jpeg"},
		{"measured rtt fallback slow", hdr(), "", 1500 * time.Millisecond, "w200-q60-jpeg"},
		{"measured rtt fallback fast", hdr(), "", 20 * time.Millisecond, "w800-q85-jpeg"},
		{"hints beat measured rtt", hdr("ECT", "4g"), "", 1500 * time.Millisecond, "w800-q85-jpeg"},
		{"width lowers", hdr("ECT", "4g", "Sec-CH-Width", "150"), "", 0, "w200-q85-jpeg"},
		{"width never raises", hdr("ECT", "2g", "Sec-CH-Width", "1000"), "", 0, "w200-q60-jpeg"},
		{"legacy width", hdr("ECT", "4g", "Width", "390"), "", 0, "w400-q85-jpeg"},
		{"viewport × dpr", hdr("ECT", "4g", "Sec-CH-Viewport-Width", "180", "Sec-CH-DPR", "2"), "", 0, "w400-q85-jpeg"},
		{"viewport alone", hdr("ECT", "4g", "Viewport-Width", "90"), "", 0, "w100-q85-jpeg"},
		{"explicit w snaps up", hdr("ECT", "2g"), "w=350", 0, "w400-q60-jpeg"},
		{"explicit w capped at largest", hdr(), "w=5000", 0, "w800-q75-jpeg"},
		{"explicit q snaps", hdr("ECT", "4g"), "q=70", 0, "w800-q75-jpeg"},
		{"explicit garbage ignored", hdr("ECT", "4g"), "w=abc&q=-3", 0, "w800-q85-jpeg"},
		{"square", hdr("ECT", "3g"), "fit=cover", 0, "w400-q75-jpeg-sq"},
		{"avif first", hdr("Accept", "image/avif,image/webp,*/*"), "", 0, "w400-q75-avif"},
		{"webp", hdr("Accept", "image/webp,*/*;q=0.8"), "", 0, "w400-q75-webp"},
		{"avif refused by q=0", hdr("Accept", "image/avif;q=0, image/webp"), "", 0, "w400-q75-webp"},
		{"a malformed q weighs 0", hdr("Accept", "image/avif;q=.5, image/webp;q=1.5"), "", 0, "w400-q75-jpeg"},
		{"q with three decimals", hdr("Accept", "image/avif;q=0.001"), "", 0, "w400-q75-avif"},
		{"wildcard is jpeg", hdr("Accept", "image/*,*/*"), "", 0, "w400-q75-jpeg"},
		{"junk hints ignored", hdr("RTT", "NaN", "Downlink", "-1", "ECT", "5g", "Sec-CH-DPR", "1e9"), "", 0, "w400-q75-jpeg"},
		{"quoted ect", hdr("ECT", `"2g"`), "", 0, "w200-q60-jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			h := ParseHints(tt.h, q)
			h.MeasuredRTT = tt.rtt
			if got := p.Choose(h, all).String(); got != tt.want {
				t.Fatalf("Choose = %s, want %s (hints %+v)", got, tt.want, h)
			}
		})
	}
}

func TestChooseSkipsFormatsTheEncoderLacks(t *testing.T) {
	p := DefaultPlan()
	h := ParseHints(hdr("Accept", "image/avif,image/webp"), nil)
	if got := p.Choose(h, []Format{FormatWebP, FormatJPEG}).Format; got != FormatWebP {
		t.Fatalf("format %v, want webp when AVIF is not available", got)
	}
}

// Different raw values in one bucket must give the same variant: the cache
// keys on it.
func TestSameBucketSameVariant(t *testing.T) {
	p := DefaultPlan()
	all := p.Formats
	groups := [][]http.Header{
		{hdr("RTT", "50"), hdr("RTT", "100"), hdr("RTT", "250", "Downlink", "10"), hdr("ECT", "4g"), hdr("Downlink", "30")},
		{hdr("RTT", "2000"), hdr("RTT", "3000"), hdr("ECT", "2g"), hdr("Save-Data", "on"), hdr("Downlink", "0.2")},
	}
	for _, g := range groups {
		want := p.Choose(ParseHints(g[0], nil), all).String()
		for _, h := range g[1:] {
			if got := p.Choose(ParseHints(h, nil), all).String(); got != want {
				t.Errorf("%v → %s, want %s like %v", h, got, want, g[0])
			}
		}
	}
}

func TestVariantRoundTrip(t *testing.T) {
	for _, v := range []Variant{
		{Width: 200, Quality: 60, Format: FormatJPEG},
		{Width: 800, Quality: 85, Format: FormatAVIF, Square: true},
		{Width: 400, Quality: 75, Format: FormatWebP},
	} {
		got, err := ParseVariant(v.String())
		if err != nil || got != v {
			t.Fatalf("ParseVariant(%q) = %+v, %v", v.String(), got, err)
		}
	}
	for _, s := range []string{"", "w400", "w400-q75", "w0400-q75-jpeg", "w400-q75-jpg", "w400-q101-jpeg",
		"w400-q75-jpeg-xx", "w400-q75-jpeg-sq-sq", "W400-q75-jpeg", "w4x0-q75-jpeg", "w99999-q75-jpeg", "w-1-q75-jpeg"} {
		if v, err := ParseVariant(s); err == nil {
			t.Errorf("ParseVariant(%q) = %+v, want an error", s, v)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	bad := []func(*Plan){
		func(p *Plan) { p.Sizes = nil },
		func(p *Plan) { p.Sizes = []int{400, 200, 800} },
		func(p *Plan) { p.Budgets[ClassFast].Width = 1000 },
		func(p *Plan) { p.Budgets[ClassSlow].Quality = 0 },
		func(p *Plan) { p.Formats = []Format{FormatWebP} },
		func(p *Plan) { p.SlowRTT = time.Millisecond },
		func(p *Plan) { p.SlowDownlink = 5 },
	}
	for i, f := range bad {
		p := DefaultPlan()
		f(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("case %d: Validate accepted %+v", i, p)
		}
	}
}

func TestPlanAllows(t *testing.T) {
	p := DefaultPlan()
	if !p.Allows(Variant{Width: 400, Quality: 75, Format: FormatWebP}) {
		t.Fatal("a plan variant refused")
	}
	for _, v := range []Variant{{Width: 401, Quality: 75}, {Width: 400, Quality: 74}, {Width: 400, Quality: 75, Format: Format(9)}} {
		if p.Allows(v) {
			t.Errorf("Allows(%+v)", v)
		}
	}
}

// FuzzParseHints: any header and query values give a variant the plan
// allows, whose canonical form parses back to itself.
func FuzzParseHints(f *testing.F) {
	f.Add("on", "4g", "1.5", "300", "2", "400", "360", "image/avif,image/webp", "w=350&q=70&fit=cover")
	f.Add("", "slow-2g", "0.05", "2500", "3.5", "", "", "*/*", "")
	f.Add("off", "\"3g\"", "NaN", "-1", "1e308", "0", "99999999999", "image/webp;q=0", "w=%zz")
	f.Add("", "", "", "", "", "", "", "", "w=1e3&q=0.5")
	p := DefaultPlan()
	f.Fuzz(func(t *testing.T, saveData, ect, downlink, rtt, dpr, width, viewport, accept, query string) {
		h := hdr("Save-Data", saveData, "ECT", ect, "Downlink", downlink, "RTT", rtt,
			"Sec-CH-DPR", dpr, "Sec-CH-Width", width, "Sec-CH-Viewport-Width", viewport, "Accept", accept)
		q, _ := url.ParseQuery(query)
		hs := ParseHints(h, q)
		v := p.Choose(hs, p.Formats)
		if !p.Allows(v) {
			t.Fatalf("variant %+v not allowed (hints %+v)", v, hs)
		}
		got, err := ParseVariant(v.String())
		if err != nil || got != v {
			t.Fatalf("round trip %q: %+v, %v", v.String(), got, err)
		}
		if strings.ContainsAny(v.String(), " ,;\"") {
			t.Fatalf("variant %q is not a token", v.String())
		}
	})
}
