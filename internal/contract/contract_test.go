package contract

import (
	"slices"
	"strings"
	"testing"
)

func TestTags(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{UserTag(42), "user:42"},
		{ProfileTag(7), "profile:7"},
		{SuggestionsTag(1), "suggestions:1"},
		{MatchesTag(9), "matches:9"},
		{PhotoTag("42/photos/a.jpg"), "photo:42/photos/a.jpg"},
		{PhotoTag("42/photos/a b,c%d\n"), "photo:42/photos/a%20b%2Cc%25d%0A"},
		{JoinTags(UserTag(1), ProfileTag(1)), "user:1 profile:1"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestAppendTags(t *testing.T) {
	got := AppendTags(nil, []string{"user:1 profile:1", " a,,b\tc ", ""})
	want := []string{"user:1", "profile:1", "a", "b", "c"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestMatchETagList(t *testing.T) {
	for _, c := range []struct {
		field, etag string
		want        bool
	}{
		{`"a"`, `"a"`, true},
		{`W/"a"`, `"a"`, true},
		{`"a"`, `W/"a"`, true},
		{`"b", "a"`, `"a"`, true},
		{`*`, `"a"`, true},
		{`*`, ``, true},
		{`"b"`, `"a"`, false},
		{`a`, `a`, false}, // unquoted: malformed
		{`""`, ``, false},
		{``, `"a"`, false},
		{`"a`, `"a`, false},
	} {
		if got := MatchETagList(c.field, c.etag); got != c.want {
			t.Errorf("MatchETagList(%q, %q) = %v, want %v", c.field, c.etag, got, c.want)
		}
	}
}

func TestQValue(t *testing.T) {
	for _, c := range []struct {
		params string
		want   float64
	}{
		{"", 1},
		{"q=1", 1},
		{"q=1.000", 1},
		{"q=0", 0},
		{"q=0.5", 0.5},
		{" Q = 0.123 ", 0.123},
		{"level=1;q=0.25", 0.25},
		{"q=0.0001", 0},
		{"q=1.5", 0},
		{"q=2", 0},
		{"q=-1", 0},
		{"q=.5", 0},
		{"q=abc", 0},
		{"q=", 0},
		{"level=1", 1},
	} {
		if got := QValue(c.params); got != c.want {
			t.Errorf("QValue(%q) = %v, want %v", c.params, got, c.want)
		}
	}
}

// FuzzAppendTags: no tag is empty or holds a separator, and a value made
// of escaped tags splits back into exactly those tags.
func FuzzAppendTags(f *testing.F) {
	f.Add("user:1 profile:1", "42/photos/a b")
	f.Add(",,", "%,\x00\xff")
	f.Fuzz(func(t *testing.T, field, name string) {
		for _, tag := range AppendTags(nil, []string{field}) {
			if tag == "" || strings.ContainsAny(tag, " \t,") {
				t.Fatalf("tag %q from %q", tag, field)
			}
		}
		tags := []string{PhotoTag(name), UserTag(int64(len(name)))}
		if got := AppendTags(nil, []string{JoinTags(tags...)}); !slices.Equal(got, tags) {
			t.Fatalf("split %q back to %q", tags, got)
		}
	})
}

// FuzzQValue: every weight is within [0, 1].
func FuzzQValue(f *testing.F) {
	f.Add("q=0.5")
	f.Add("q=1.000;x")
	f.Fuzz(func(t *testing.T, params string) {
		if q := QValue(params); q < 0 || q > 1 {
			t.Fatalf("QValue(%q) = %v", params, q)
		}
	})
}

// FuzzMatchETagList: "*" always matches, and a list holding the tag
// matches it, weak or not.
func FuzzMatchETagList(f *testing.F) {
	f.Add(`"a", W/"b"`, "b")
	f.Fuzz(func(t *testing.T, field, opaque string) {
		if strings.ContainsAny(opaque, "\",") {
			return
		}
		etag := `"` + opaque + `"`
		if !MatchETagList(field+", *", etag) {
			t.Fatal("* did not match")
		}
		if !MatchETagList(field+", W/"+etag, etag) {
			t.Fatalf("%q does not match in %q", etag, field+", W/"+etag)
		}
	})
}

func TestIsCacheHit(t *testing.T) {
	for v, want := range map[string]bool{
		"spark; hit; ttl=41":          true,
		"spark;hit":                   true,
		"spark; fwd=miss; stored":     false,
		"spark; fwd=miss; detail=hit": false,
		"":                            false,
	} {
		if got := IsCacheHit(v); got != want {
			t.Errorf("IsCacheHit(%q) = %v", v, got)
		}
	}
}
func TestParsePosition(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"0/0", 0},
		{"0/1", 1},
		{"16/B374D848", 0x16_B374D848},
		{"16/b374d848", 0x16_B374D848},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFF_FFFFFFFF},
		{"00000001/00000000", 1 << 32},
	} {
		got, err := ParsePosition(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePosition(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "/", "16", "16/", "/1", "1/2/3", "g/1", "1/-1", "+1/1", "1/ 1",
		"123456789/1", "1/123456789", "0x1/1", "16/B374D848\n"} {
		if p, err := ParsePosition(in); err == nil {
			t.Errorf("ParsePosition(%q) = %d, want an error", in, p)
		}
	}
}

// FuzzParsePosition: every position parsed formats back to the same
// number, in PostgreSQL's spelling (upper-case digits aside), and every
// formatted position parses.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/", "a/b/c", "00000000001/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		q, err := ParsePosition(FormatPosition(p))
		if err != nil || q != p {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, p, FormatPosition(p), q, err)
		}
		hi, lo, _ := strings.Cut(s, "/")
		if strings.TrimLeft(hi, "0") == "" && strings.TrimLeft(lo, "0") == "" && p != 0 {
			t.Fatalf("%q is zero, parsed %d", s, p)
		}
	})
}
