package eventbus

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []frame{
		{op: opSub, id: 7, users: []int64{1, 2, 3}},
		{op: opUnsub, id: 8, users: []int64{}},
		{op: opPub, user: 4, payload: []byte(`{"type":"typing"}`)},
		{op: opPub, user: 4, seq: 9, payload: []byte(`[1,"}"]`)},
		{ack: 7},
		{user: 1, seq: 5, payload: []byte(`{"seq":5,"kind":"message","data":{"body":"a\"}\n"}}`)},
		{user: 1, payload: []byte(`"typing"`)},
	} {
		line := appendFrame(nil, &f)
		var got frame
		if err := decodeFrame(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got.users == nil && len(f.users) == 0 {
			got.users = f.users
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("%s decoded to %+v, want %+v", line, got, f)
		}
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	for _, line := range []string{
		``, `{`, `[1]`, `null`, `{"user":1}`, `{"payload":{}}`, `{"user":0,"payload":{}}`,
		`{"user":1,"seq":-1,"payload":{}}`, `{"user":1.5,"payload":{}}`, `{"user":"1","payload":{}}`,
		`{"op":"sub","users":[0]}`, `{"op":"sub","users":[1.5]}`, `{"op":"pub","payload":1}`,
		`{"user":99999999999999999999,"payload":1}`,
	} {
		var f frame
		if err := decodeFrame([]byte(line), &f); err == nil {
			t.Errorf("%s decoded to %+v", line, f)
		}
	}
	var f frame
	if err := decodeFrame([]byte(`{"op":"hello","v":2}`), &f); !errors.Is(err, errUnknownOp) {
		t.Errorf("unknown op: %v, want errUnknownOp", err)
	}
}

// Frames in other spellings than appendFrame's decode as encoding/json
// decodes them.
func TestDecodeFrameOtherSpellings(t *testing.T) {
	for line, want := range map[string]frame{
		` { "payload" : 1 , "user" : 2 } `:        {user: 2, payload: []byte("1")},
		`{"USER":2,"payload":1}`:                  {user: 2, payload: []byte("1")},
		`{"\u0075ser":2,"payload":1}`:             {user: 2, payload: []byte("1")},
		`{"op":"s\u0075b","users":[1]}`:           {op: opSub, users: []int64{1}},
		`{"user":2,"seq":null,"payload":1}`:       {user: 2, payload: []byte("1")},
		`{"user":2,"payload":1,"extra":{"a":[]}}`: {user: 2, payload: []byte("1")},
		`{"users":[1],"users":[2],"op":"unsub"}`:  {op: opUnsub, users: []int64{2}},
	} {
		var got frame
		if err := decodeFrame([]byte(line), &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got.op != want.op || got.user != want.user || string(got.payload) != string(want.payload) || !slices.Equal(got.users, want.users) {
			t.Errorf("%s decoded to %+v, want %+v", line, got, want)
		}
	}
}

// A message frame decodes without allocating.
func TestDecodeFrameAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	line := appendFrame(nil, &frame{user: 42, seq: 1234, payload: []byte(`{"seq":1234,"kind":"message","data":{"body":"hi"}}`)})
	sub := appendFrame(nil, &frame{op: opSub, id: 3, users: []int64{1, 2, 3, 4}})
	f := frame{users: make([]int64, 0, 8)}
	if n := testing.AllocsPerRun(100, func() {
		if decodeFrame(line, &f) != nil || decodeFrame(sub, &f) != nil {
			t.Fatal("decode failed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode, want 0", n)
	}
}

func TestLinePayload(t *testing.T) {
	if _, err := linePayload([]byte(`{"a":`)); err == nil {
		t.Fatal("invalid JSON accepted")
	}
	p, err := linePayload([]byte("{\n  \"a\": \"x\\ny\"\n}"))
	if err != nil || string(p) != `{"a":"x\ny"}` {
		t.Fatalf("compacted to %q, %v", p, err)
	}
}

// FuzzDecodeFrame: never a panic; the fast path agrees with encoding/json
// wherever it answers; what decodes re-encodes to a line that decodes to
// the same frame (the same line again).
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"op":"sub","id":7,"users":[1,2]}`, `{"op":"pub","user":1,"seq":2,"payload":{"a":[1,"]"]}}`,
		`{"ack":3}`, `{"user":1,"seq":5,"payload":{"k":"\"}"}}`, `{"USERS":[1],"op":"sub"}`,
		`{"user":-9223372036854775808,"payload":0}`, `{"user":1e3,"payload":0}`, `{"payload":"x","user":9223372036854775807}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got frame
		err := decodeFrame(b, &got)
		if json.Valid(b) {
			var fast, std frame
			if decodeFast(b, &fast) {
				if e := decodeStd(b, &std); e != nil {
					t.Fatalf("%q: fast path decoded %+v, encoding/json failed: %v", b, fast, e)
				}
				if fast.op != std.op || fast.id != std.id || fast.ack != std.ack || fast.user != std.user ||
					fast.seq != std.seq || !slices.Equal(fast.users, std.users) || string(fast.payload) != string(std.payload) {
					t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, std)
				}
			}
		}
		if err != nil {
			return
		}
		if len(got.payload) > 0 {
			p, err := linePayload(got.payload)
			if err != nil {
				t.Fatalf("%q: decoded payload %q is not JSON", b, got.payload)
			}
			got.payload = p
		}
		line := appendFrame(nil, &got)
		var again frame
		if err := decodeFrame(line, &again); err != nil {
			t.Fatalf("%q re-encoded to %q: %v", b, line, err)
		}
		if twice := appendFrame(nil, &again); string(twice) != string(line) {
			t.Fatalf("%q: encoded %q, decoded and encoded again %q", b, line, twice)
		}
	})
}
