package eventbus

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{UserID: 1, Seq: 0, Payload: []byte(`{"type":"typing"}`)},
		{UserID: 1, Seq: 1<<63 - 1, Payload: nil},
		{UserID: 1, Seq: 300, Payload: []byte{0, 1, 2}},
	} {
		seq, p, err := decodeEnvelope(appendEnvelope(nil, m))
		if err != nil || seq != m.Seq || !bytes.Equal(p, m.Payload) {
			t.Fatalf("%+v came back as %d %q %v", m, seq, p, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {2, 1}, {1}, {1, 0x80}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, _, err := decodeEnvelope(bad); err == nil {
			t.Errorf("envelope %v accepted", bad)
		}
	}
}

func TestUserOfChannel(t *testing.T) {
	n := newNaming("spark:")
	if n.channel(42) != "spark:u:42" || n.presence(42) != "spark:presence:42" {
		t.Fatalf("names %q %q", n.channel(42), n.presence(42))
	}
	for ch, want := range map[string]int64{"spark:u:42": 42, "spark:u:9223372036854775807": 1<<63 - 1,
		"spark:u:": 0, "spark:u:042": 0, "spark:u:-1": 0, "spark:u:9223372036854775808": 0, "other:u:4": 0, "spark:u:4x": 0} {
		got, ok := n.userOf([]byte(ch))
		if got != want || ok != (want != 0) {
			t.Errorf("userOf(%q) = %d %v, want %d", ch, got, ok, want)
		}
	}
}

// FuzzDecodeEnvelope: never a panic; what decodes, encoded again,
// decodes to the same values.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, Message{UserID: 1, Seq: 5, Payload: []byte(`{}`)}))
	f.Add([]byte{1, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, p, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again := appendEnvelope(nil, Message{Seq: seq, Payload: p})
		if s2, p2, err := decodeEnvelope(again); err != nil || s2 != seq || !bytes.Equal(p2, p) {
			t.Fatalf("%v: decoded %d %q; re-encoded %v: %d %q %v", b, seq, p, again, s2, p2, err)
		}
	})
}
