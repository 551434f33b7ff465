package sparkv1

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeMessageCoalesced(t *testing.T) {
	msg := []byte(`{"type":"event","event":{"seq":7,"kind":"message","at":"2026-12-07T10:00:00Z","data":{"id":3,"conversation_id":2,"conv_seq":1,"sender_id":5,"body":"hi","client_msg_id":"c1","created_at":"2026-12-07T10:00:00Z"}}}` + "\n" +
		`{"type":"sent","client_msg_id":"c2","message":{"id":4,"conversation_id":2,"sender_id":6,"body":"yo","client_msg_id":"c2"}}` + "\n" +
		`{"type":"typing","conversation_id":2,"user_id":5}` + "\n" +
		`{"type":"error","ref":"c9","code":"rate_limited","detail":"slow down"}` + "\n" +
		`{"type":"resync"}`)
	fs, err := DecodeMessage(msg)
	if err != nil || len(fs) != 5 {
		t.Fatalf("%d frames, %v", len(fs), err)
	}
	m, err := fs[0].Event.MessageData()
	if err != nil || fs[0].Event.Seq != 7 || m.SenderID != 5 || m.ClientMsgID != "c1" || m.Body != "hi" {
		t.Fatalf("event %+v %+v %v", fs[0].Event, m, err)
	}
	if fs[1].Message.ID != 4 || fs[1].ClientMsgID != "c2" || fs[2].UserID != 5 || fs[3].Code != "rate_limited" || fs[4].Type != TypeResync {
		t.Fatalf("frames %+v", fs[1:])
	}
	if _, err := (&Event{Seq: 1, Kind: KindMatch}).MessageData(); err == nil {
		t.Fatal("a match event decoded as a message")
	}
}

func TestDecodeMessageRefusesBadFrames(t *testing.T) {
	for _, line := range []string{
		`not json`,
		`{"type":"event"}`,
		`{"type":"event","event":{"seq":0,"kind":"message"}}`,
		`{"type":"sent","client_msg_id":"x"}`,
		`{"type":"typing","conversation_id":1}`,
		`{"type":"error"}`,
		`{"type":"party"}`,
		`{}`,
	} {
		fs, err := DecodeMessage([]byte(`{"type":"resync"}` + "\n" + line))
		if !errors.Is(err, ErrBadFrame) || len(fs) != 1 {
			t.Errorf("%s: %d frames, %v; want the first frame and ErrBadFrame", line, len(fs), err)
		}
	}
}

func TestClientFramesAreValidJSON(t *testing.T) {
	for _, f := range [][]byte{SendFrame(3, "he said \"hi\"\n", "id-1"), TypingFrame(3), ReadFrame(3, 9), AckFrame(12)} {
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil || m["type"] == nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	var s struct{ Body string }
	_ = json.Unmarshal(SendFrame(3, "he said \"hi\"\n", "id-1"), &s)
	if s.Body != "he said \"hi\"\n" {
		t.Fatalf("body %q", s.Body)
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":   "ws://127.0.0.1:8080/api/realtime?since=4",
		"https://edge.example/":   "wss://edge.example/api/realtime?since=4",
		"ws://127.0.0.1:1/prefix": "ws://127.0.0.1:1/prefix/api/realtime?since=4",
	} {
		if got, err := URL(in, 4, true); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	if got, _ := URL("http://h:1", 0, false); got != "ws://h:1/api/realtime" {
		t.Errorf("live only: %s", got)
	}
	if _, err := URL("ftp://h", 0, false); err == nil {
		t.Error("ftp accepted")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"type":"event","event":{"seq":1,"kind":"message","data":{}}}` + "\n" + `{"type":"resync"}`))
	f.Add([]byte(`{"type":"sent","client_msg_id":"a","message":{"id":1}}`))
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		fs, err := DecodeMessage(msg)
		for _, fr := range fs {
			if fr.Type == "" {
				t.Fatalf("a frame without a type decoded: %+v", fr)
			}
			if fr.Type == TypeEvent {
				_, _ = fr.Event.MessageData()
			}
		}
		_ = err
	})
}
