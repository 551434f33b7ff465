package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func sampleEntry() *entry {
	return &entry{
		status: 200,
		header: http.Header{
			"Content-Type":  {"application/json"},
			"Etag":          {`"abc"`},
			"Vary":          {"Accept-Encoding", "Accept-Language"},
			"Link":          {"</a>; rel=preload", "</b>; rel=preload", "</c>; rel=preload"},
			"X-Empty":       {""},
			"Cache-Control": {"max-age=60, s-maxage=120"},
		},
		body:           []byte(`{"id":42,"name":"Ada"}`),
		stored:         time.Unix(1_700_000_000, 123456789),
		age:            3 * time.Second,
		fresh:          120 * time.Second,
		swr:            -1,
		sie:            30 * time.Second,
		mustRevalidate: true,
		noCache:        false,
		authOK:         true,
		authFill:       true,
		deny:           denyList(appendDenyList(nil, []uint64{17, 42, 977})),
		tagBlock:       appendTags(nil, []string{"user:42", "profile:42"}),
	}
}

func equalEntry(t *testing.T, got, want *entry) {
	t.Helper()
	if got.status != want.status || !got.stored.Equal(want.stored) || got.age != want.age || got.fresh != want.fresh ||
		got.swr != want.swr || got.sie != want.sie || got.mustRevalidate != want.mustRevalidate ||
		got.noCache != want.noCache || got.authOK != want.authOK || got.authFill != want.authFill {
		t.Errorf("scalars differ:\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(got.deny.ids(), want.deny.ids()) || !reflect.DeepEqual(got.tags(), want.tags()) {
		t.Errorf("deny list %v tags %q, want %v %q", got.deny.ids(), got.tags(), want.deny.ids(), want.tags())
	}
	if string(got.body) != string(want.body) {
		t.Errorf("body %q, want %q", got.body, want.body)
	}
	wh := want.header
	if wh == nil {
		wh = http.Header{}
	}
	if gh := got.fields(); !reflect.DeepEqual(gh, wh) {
		t.Errorf("header\n got %q\nwant %q", gh, wh)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	full := sampleEntry()
	empty := &entry{status: 204, stored: time.Unix(0, 1), swr: -1, sie: -1, noCache: true}
	big := sampleEntry()
	big.body = make([]byte, 300_000)
	for i := range big.body {
		big.body[i] = byte(i * 7)
	}
	long := sampleEntry()
	long.header.Set("X-Long", string(make([]byte, 70_000))) // multi-byte length prefix
	many := sampleEntry()
	for i := 0; i < 500; i++ {
		many.header.Add("X-Many", strconv.Itoa(i))
	}
	bare := sampleEntry()
	bare.deny, bare.tagBlock, bare.authFill = nil, nil, false
	for name, e := range map[string]*entry{"full": full, "empty": empty, "big body": big, "long value": long, "many values": many, "no deny list or tags": bare} {
		t.Run(name, func(t *testing.T) {
			b := encodeEntry(nil, e)
			got, err := decodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			equalEntry(t, got, e)
			// Multi-valued fields keep their order.
			if vs := got.fields().Values("Link"); len(e.header["Link"]) > 0 && (len(vs) != 3 || vs[1] != "</b>; rel=preload") {
				t.Errorf("Link values %q", vs)
			}
		})
	}
}

func TestEntryDecodedHeadersAreIndependent(t *testing.T) {
	got, err := decodeEntry(encodeEntry(nil, sampleEntry()))
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one field must not clobber the values of another field
	// sharing the decoded backing array: in the entry's own map, and in a
	// response header a hit decodes them into.
	for _, header := range []http.Header{got.fields(), copied(got)} {
		before := append([]string(nil), header["Vary"]...)
		others := header.Clone()
		for k := range header {
			header[k] = append(header[k], "appended")
		}
		for k, vs := range others {
			if !reflect.DeepEqual(header[k][:len(vs)], vs) {
				t.Errorf("%s: %q became %q", k, vs, header[k])
			}
		}
		if !reflect.DeepEqual(header["Vary"][:2], before) {
			t.Errorf("Vary clobbered: %q", header["Vary"])
		}
	}
}

// copied is what copyFields sets on an empty response header.
func copied(e *entry) http.Header {
	h := http.Header{}
	e.copyFields(h)
	return h
}

func TestEntryEncodeAppends(t *testing.T) {
	prefix := []byte("prefix")
	b := encodeEntry(append([]byte(nil), prefix...), sampleEntry())
	if string(b[:len(prefix)]) != "prefix" {
		t.Fatal("encodeEntry overwrote dst")
	}
	if _, err := decodeEntry(b[len(prefix):]); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeEntryCorrupt(t *testing.T) {
	good := encodeEntry(nil, sampleEntry())
	headerEnd := len(good) - len(sampleEntry().body)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"nil":           nil,
		"empty":         {},
		"kind only":     {kindResponse},
		"vary kind":     mut(func(b []byte) []byte { b[0] = kindVary; return b }),
		"unknown kind":  mut(func(b []byte) []byte { b[0] = 99; return b }),
		"wrong version": mut(func(b []byte) []byte { b[1] = entryVersion + 1; return b }),
		"fixed part -1": good[:fixedLen-1],
		"status zero":   mut(func(b []byte) []byte { b[2], b[3] = 0, 0; return b }),
		"status 65535":  mut(func(b []byte) []byte { b[2], b[3] = 0xff, 0xff; return b }),
		"count too big": mut(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[fixedLen-2:], 0xffff); return b }),
		"length past end": mut(func(b []byte) []byte {
			b = b[:fixedLen]
			binary.LittleEndian.PutUint16(b[fixedLen-2:], 1)
			return append(b, 0x7f, 'a')
		}),
		"varint overflow": mut(func(b []byte) []byte {
			b = b[:fixedLen]
			binary.LittleEndian.PutUint16(b[fixedLen-2:], 1)
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}),
		"huge varint": mut(func(b []byte) []byte {
			b = b[:fixedLen]
			binary.LittleEndian.PutUint16(b[fixedLen-2:], 1)
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
		}),
		"unterminated varint": mut(func(b []byte) []byte {
			b = b[:fixedLen]
			binary.LittleEndian.PutUint16(b[fixedLen-2:], 1)
			return append(b, 0x80)
		}),
		"name without value": mut(func(b []byte) []byte {
			b = b[:fixedLen]
			binary.LittleEndian.PutUint16(b[fixedLen-2:], 1)
			return append(b, 1, 'a')
		}),
	}
	for i := fixedLen; i < headerEnd; i++ {
		cases["truncated at "+strconv.Itoa(i)] = good[:i]
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("decodeEntry panicked: %v", r)
				}
			}()
			e, err := decodeEntry(b)
			if !errors.Is(err, errCorrupt) || e != nil {
				t.Fatalf("decodeEntry = %v, %v; want nil, errCorrupt", e, err)
			}
		})
	}
}

// An entry whose header count does not fit the format must never be
// encoded: it would decode as different headers and a poisoned body.
func TestEntryTooManyHeaderValues(t *testing.T) {
	e := &entry{status: 200, header: http.Header{}, body: []byte("body")}
	vs := make([]string, maxHeaderValues)
	e.header["X-A"] = vs
	if !e.encodable() {
		t.Fatalf("%d values should be encodable", maxHeaderValues)
	}
	got, err := decodeEntry(encodeEntry(nil, e))
	if err != nil || len(got.fields()["X-A"]) != maxHeaderValues || string(got.body) != "body" {
		t.Fatalf("round trip at the limit failed: %v", err)
	}
	e.header["X-B"] = []string{"one more"}
	if e.encodable() {
		t.Fatalf("%d values reported encodable", maxHeaderValues+1)
	}
}

func TestVaryRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		fields  []string
		private bool
	}{
		{nil, true},
		{[]string{"accept-encoding"}, false},
		{[]string{"accept-encoding", "authorization", "x-" + string(make([]byte, 300))}, true},
	} {
		fields, private, err := decodeVary(encodeVary(tc.fields, tc.private))
		if err != nil || private != tc.private || !reflect.DeepEqual(fields, tc.fields) {
			t.Errorf("decodeVary(encodeVary(%q, %v)) = %q, %v, %v", tc.fields, tc.private, fields, private, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":           {},
		"short":           {kindVary, varyVersion},
		"response kind":   {kindResponse, varyVersion, 0},
		"wrong version":   {kindVary, 9, 0},
		"length past end": {kindVary, varyVersion, 0, 5, 'a'},
		"bad varint":      {kindVary, varyVersion, 0, 0x80},
	} {
		if _, _, err := decodeVary(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeVary err = %v, want errCorrupt", name, err)
		}
	}
	// A response entry is not a Vary record and vice versa.
	if _, err := decodeEntry(encodeVary([]string{"accept"}, false)); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeEntry accepted a Vary record: %v", err)
	}
}
