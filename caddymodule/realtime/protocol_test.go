package realtime

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestDecodeClientFrames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want clientFrame
		code string
	}{
		{`{"type":"send","conversation_id":3,"body":"hi","client_msg_id":"a"}`, clientFrame{Type: typeSend, ConversationID: 3, Body: "hi", ClientMsgID: "a"}, ""},
		{`{"type":"read","conversation_id":3,"message_id":9}`, clientFrame{Type: typeRead, ConversationID: 3, MessageID: 9}, ""},
		{`{"type":"typing","conversation_id":3,"extra":true}`, clientFrame{Type: typeTyping, ConversationID: 3}, ""},
		{`{"type":"ack","seq":0}`, clientFrame{Type: typeAck}, ""},
		{`{"type":"ack","seq":1.5}`, clientFrame{}, codeBadFrame},
		{`{"type":"ack","seq":99999999999999999999}`, clientFrame{}, codeBadFrame},
		{`{"type":"send","conversation_id":3,"body":"","client_msg_id":"a"}`, clientFrame{}, codeBadFrame},
		{`{"type":7}`, clientFrame{}, codeBadFrame},
		{`{"type":"x"}`, clientFrame{}, codeUnknownType},
		{`{"type":"ack","seq":1} trailing`, clientFrame{}, codeBadFrame},
		{``, clientFrame{}, codeBadFrame},
		{`null`, clientFrame{}, codeBadFrame},
	} {
		got, err := decodeClientFrame([]byte(tc.in))
		if tc.code != "" {
			if err == nil || err.code != tc.code {
				t.Errorf("%s: %+v %v, want %s", tc.in, got, err, tc.code)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v", tc.in, got, err)
		}
	}
	if _, err := decodeSend([]byte(`{"type":"ack","seq":1}`)); err == nil {
		t.Error("decodeSend took an ack")
	}
}

func TestServerFramesRoundTrip(t *testing.T) {
	ev := []byte(`{"seq":4,"kind":"message","at":"2026-12-07T10:00:00.123456Z","data":{"conversation_id":3}}`)
	var msg []byte
	msg = appendEventFrame(msg, ev)
	msg = append(msg, '\n')
	msg = appendSentFrame(msg, "c\"1", []byte(`{"id":1}`), "0/4000128")
	msg = append(msg, '\n')
	msg = appendSentFrame(msg, "c2", []byte(`{"id":2}`), "")
	msg = append(msg, '\n')
	msg = appendTypingFrame(msg, 3, 8)
	msg = append(msg, '\n')
	msg = appendErrorFrame(msg, &frameError{ref: "r", code: codeInvalid, detail: "d\n<x>"})
	msg = append(msg, '\n')
	msg = append(msg, resyncFrame...)
	fs, err := decodeServerMessage(msg)
	if err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	want := []serverFrame{
		{Type: typeEvent, Event: ev},
		{Type: typeSent, ClientMsgID: "c\"1", ReadAfter: "0/4000128", Message: json.RawMessage(`{"id":1}`)},
		{Type: typeSent, ClientMsgID: "c2", Message: json.RawMessage(`{"id":2}`)},
		{Type: typeTyping, ConversationID: 3, UserID: 8},
		{Type: typeError, Ref: "r", Code: codeInvalid, Detail: "d\n<x>"},
		{Type: typeResync},
	}
	if !reflect.DeepEqual(fs, want) {
		t.Fatalf("got  %+v\nwant %+v", fs, want)
	}
}

func TestCompactJSON(t *testing.T) {
	out, err := compactJSON([]byte("{\"a\": 1,\n \"b\": \"x\\ny\"}\n"))
	if err != nil || string(out) != `{"a":1,"b":"x\ny"}` {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := compactJSON([]byte("{\n")); err == nil {
		t.Fatal("compacted invalid JSON")
	}
}

// fuzzClientDecoder checks a client frame decoder on any input: no panic;
// a decoded frame is valid and survives re-encoding; an error has a code.
func fuzzClientDecoder(f *testing.F, decode func([]byte) (clientFrame, *frameError), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decode(data)
		if err != nil {
			if err.code == "" || err.detail == "" || len(err.ref) > 64 {
				t.Fatalf("error %+v", err)
			}
			frame := appendErrorFrame(nil, err)
			if !json.Valid(frame) || bytes.IndexByte(frame, '\n') >= 0 {
				t.Fatalf("error frame %q", frame)
			}
			return
		}
		again, err := decodeClientFrame(reencode(t, fr))
		if err != nil || again != fr {
			t.Fatalf("%+v re-encoded decodes to %+v %v", fr, again, err)
		}
	})
}

// reencode writes a client frame back as JSON.
func reencode(t *testing.T, fr clientFrame) []byte {
	m := map[string]any{"type": fr.Type}
	switch fr.Type {
	case typeSend:
		if !utf8.ValidString(fr.Body) || !utf8.ValidString(fr.ClientMsgID) {
			t.Skip("invalid UTF-8 never reaches the decoder (1007)")
		}
		m["conversation_id"], m["body"], m["client_msg_id"] = fr.ConversationID, fr.Body, fr.ClientMsgID
	case typeRead:
		m["conversation_id"], m["message_id"] = fr.ConversationID, fr.MessageID
	case typeTyping:
		m["conversation_id"] = fr.ConversationID
	case typeAck:
		m["seq"] = fr.Seq
	}
	b, _ := json.Marshal(m)
	return b
}

func FuzzDecodeClientFrame(f *testing.F) {
	fuzzClientDecoder(f, decodeClientFrame, `{"type":"ack","seq":1}`, `{"type":"send","conversation_id":1,"body":"x","client_msg_id":"y"}`, `{"type":"zz"}`, `[`)
}

func FuzzDecodeSend(f *testing.F) {
	fuzzClientDecoder(f, decodeSend, `{"type":"send","conversation_id":1,"body":"x","client_msg_id":"y"}`, `{"type":"send","conversation_id":-1}`)
}

func FuzzDecodeRead(f *testing.F) {
	fuzzClientDecoder(f, decodeRead, `{"type":"read","conversation_id":1,"message_id":2}`, `{"type":"read"}`)
}

func FuzzDecodeTyping(f *testing.F) {
	fuzzClientDecoder(f, decodeTyping, `{"type":"typing","conversation_id":1}`, `{"type":"typing","conversation_id":"1"}`)
}

func FuzzDecodeAck(f *testing.F) {
	fuzzClientDecoder(f, decodeAck, `{"type":"ack","seq":1}`, `{"type":"ack","seq":1e3}`)
}

// fuzzServerDecoder checks server frame decoding on any input: no panic,
// and a decoded frame of the wanted type.
func fuzzServerDecoder(f *testing.F, typ string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeServerFrame(data)
		if err != nil {
			return
		}
		if _, ok := serverDecoders[fr.Type]; !ok {
			t.Fatalf("decoded unknown type %q", fr.Type)
		}
		if fr.Type == typ && typ == typeEvent {
			if _, err := decodeEvent(fr.Event); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzDecodeEventFrame(f *testing.F) {
	fuzzServerDecoder(f, typeEvent, `{"type":"event","event":{"seq":1,"kind":"message","at":"2026-01-01T00:00:00Z","data":{}}}`, `{"type":"event","event":{"seq":0}}`)
}

func FuzzDecodeSentFrame(f *testing.F) {
	fuzzServerDecoder(f, typeSent, `{"type":"sent","client_msg_id":"a","message":{"id":1}}`, `{"type":"sent","message":[]}`)
}

func FuzzDecodeTypingFrame(f *testing.F) {
	fuzzServerDecoder(f, typeTyping, `{"type":"typing","conversation_id":1,"user_id":2}`)
}

func FuzzDecodeErrorFrame(f *testing.F) {
	fuzzServerDecoder(f, typeError, `{"type":"error","ref":"a","code":"bad_frame","detail":"x"}`, `{"type":"error"}`)
}

func FuzzDecodeResyncFrame(f *testing.F) {
	fuzzServerDecoder(f, typeResync, `{"type":"resync"}`)
}

// FuzzDecodeBusPayloads: what the bus carries (events, typing notices) never
// panics the hub's decoders, and a decoded event frames as valid JSON.
func FuzzDecodeBusPayloads(f *testing.F) {
	f.Add([]byte(`{"seq":1,"kind":"match","at":"2026-01-01T00:00:00Z","data":{"conversation_id":1,"peer_id":2}}`))
	f.Add([]byte(`{"type":"typing","conversation_id":1,"user_id":2}`))
	f.Add([]byte("{\n\"seq\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if le, err := newLiveEvent(1, data); err == nil && !json.Valid(le.frame) {
			t.Fatalf("frame %q", le.frame)
		}
		_, _ = decodeTypingNotice(data)
	})
}
