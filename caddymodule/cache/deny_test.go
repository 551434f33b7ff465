package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/spark-edge/spark/internal/contract"
)

func TestParseDenyUsers(t *testing.T) {
	many := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = strconv.Itoa(i + 1)
		}
		return strings.Join(ids, " ")
	}
	cases := []struct {
		name   string
		values []string
		want   []uint64
		ok     bool
	}{
		{"spaces", []string{"17 42 977"}, []uint64{17, 42, 977}, true},
		{"commas", []string{"977,42, 17"}, []uint64{17, 42, 977}, true},
		{"tabs and runs", []string{"\t17 ,, 42\t"}, []uint64{17, 42}, true},
		{"two lines", []string{"5", "3 4"}, []uint64{3, 4, 5}, true},
		{"duplicates", []string{"7 7 7"}, []uint64{7}, true},
		{"empty field", []string{""}, nil, true},
		{"zero and max", []string{"0 18446744073709551615"}, []uint64{0, 18446744073709551615}, true},
		{"at the limit", []string{many(contract.MaxDenyUsers)}, nil, true},
		{"over the limit", []string{many(contract.MaxDenyUsers + 1)}, nil, false},
		{"overflow", []string{"18446744073709551616"}, nil, false},
		{"sign", []string{"-1"}, nil, false},
		{"plus", []string{"+1"}, nil, false},
		{"letters", []string{"17 bob"}, nil, false},
		{"digits into junk", []string{"17x"}, nil, false},
		{"semicolon", []string{"17;42"}, nil, false},
		{"newline", []string{"17\n42"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseDenyUsers(tc.values)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
			if tc.name == "at the limit" && len(got) != contract.MaxDenyUsers {
				t.Errorf("%d ids, want %d", len(got), contract.MaxDenyUsers)
			}
		})
	}
}

func TestDenyListEncoding(t *testing.T) {
	for _, ids := range [][]uint64{nil, {0}, {17}, {17, 42, 977}, {1, 1 << 40, 1<<64 - 1}} {
		d := denyList(appendDenyList(nil, ids))
		if len(ids) > 0 && len(d) == 0 {
			t.Fatalf("%v encodes to nothing: read as no deny list", ids)
		}
		if got := d.ids(); !slices.Equal(got, ids) {
			t.Errorf("ids(%v) = %v", ids, got)
		}
		for _, id := range ids {
			if !d.contains(id) {
				t.Errorf("%v does not contain %d", ids, id)
			}
		}
		for _, id := range []uint64{2, 16, 18, 43, 976, 978, 1<<64 - 2} {
			if d.contains(id) != slices.Contains(ids, id) {
				t.Errorf("%v contains(%d) = %v", ids, id, d.contains(id))
			}
		}
	}
	// A corrupt list refuses everyone.
	if !(denyList{0x80}).contains(5) {
		t.Error("a truncated varint does not refuse")
	}
}

// withViewer returns r with a Caddy replacer holding the viewer placeholder
// (as spark_auth or basic_auth set it), or none when id is nil.
func withViewer(r *http.Request, id any) *http.Request {
	repl := caddy.NewReplacer()
	if id != nil {
		repl.Set(viewerPlaceholder, id)
	}
	return withThisReplacer(r, repl)
}

// withThisReplacer returns r with repl as its replacer.
func withThisReplacer(r *http.Request, repl *caddy.Replacer) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

func TestViewerIDAndRefused(t *testing.T) {
	base := httptest.NewRequest(http.MethodGet, "http://spark.test/p", nil)
	e := &entry{deny: denyList(appendDenyList(nil, []uint64{17, 42}))}
	none := &entry{}
	cases := []struct {
		name    string
		r       *http.Request
		id      uint64
		known   bool
		refused bool
	}{
		{"no replacer", base, 0, false, true},
		{"no placeholder", withViewer(base, nil), 0, false, true},
		{"allowed", withViewer(base, "5"), 5, true, false},
		{"denied", withViewer(base, "42"), 42, true, true},
		{"denied int", withViewer(base, 17), 17, true, true},
		{"empty id", withViewer(base, ""), 0, false, true},
		{"name, not id", withViewer(base, "alice"), 0, false, true},
		{"signed", withViewer(base, "+5"), 0, false, true},
		{"negative int", withViewer(base, -5), 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, known := viewerID(tc.r)
			if id != tc.id || known != tc.known {
				t.Errorf("viewerID = %d, %v; want %d, %v", id, known, tc.id, tc.known)
			}
			if got := refused(tc.r, e); got != tc.refused {
				t.Errorf("refused = %v, want %v", got, tc.refused)
			}
			if refused(tc.r, none) {
				t.Error("an entry without a deny list refused a viewer")
			}
		})
	}
	if !refused(withViewer(base, "5"), &entry{refuseAll: true}) {
		t.Error("refuseAll served")
	}
}

// FuzzParseDenyUsers checks the parser against its definition: fields
// split on spaces, tabs and commas, each a uint64 in plain decimal, at most
// contract.MaxDenyUsers of them.
func FuzzParseDenyUsers(f *testing.F) {
	for _, s := range []string{"17 42 977", "1,2,,3", "", " ", "18446744073709551616", "-1", "+1", "1\n2", "0x10", "١٢", "7 7"} {
		f.Add(s, "")
	}
	f.Add("1 2", "3,4")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, ok := parseDenyUsers([]string{a, b})
		var want []uint64
		wantOK := true
		for _, v := range []string{a, b} {
			for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
				plain := tok != "" && strings.Trim(tok, "0123456789") == ""
				id, err := strconv.ParseUint(tok, 10, 64)
				if !plain || err != nil {
					wantOK = false
				}
				want = append(want, id)
			}
		}
		if len(want) > contract.MaxDenyUsers {
			wantOK = false
		}
		if ok != wantOK {
			t.Fatalf("parseDenyUsers(%q, %q) ok = %v, want %v", a, b, ok, wantOK)
		}
		if !ok {
			return
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("parseDenyUsers(%q, %q) = %v, want %v", a, b, got, want)
		}
		d := denyList(appendDenyList(nil, got))
		for _, id := range got {
			if !d.contains(id) {
				t.Fatalf("encoded list misses %d", id)
			}
		}
	})
}
