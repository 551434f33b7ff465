package realtime

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientLineFrames(t *testing.T) {
	n := 0
	for line, want := range map[string]string{
		"/send 7 hello there":    `{"body":"hello there","client_msg_id":"cli-5-1","conversation_id":7,"type":"send"}`,
		"/typing 7":              `{"conversation_id":7,"type":"typing"}`,
		"/read 7 12":             `{"conversation_id":7,"message_id":12,"type":"read"}`,
		"/ack 3":                 `{"seq":3,"type":"ack"}`,
		`{"type":"ack","seq":1}`: `{"type":"ack","seq":1}`,
		"  ":                     "",
	} {
		got, err := lineFrame(line, 5, &n)
		if err != nil || string(got) != want {
			t.Errorf("%q: %s %v", line, got, err)
		}
	}
	if _, err := lineFrame("/dance", 5, &n); err == nil {
		t.Error("unknown command accepted")
	}
	// Each frame decodes as the protocol says.
	if f, err := decodeClientFrame([]byte(`{"body":"hello there","client_msg_id":"cli-5-1","conversation_id":7,"type":"send"}`)); err != nil || f.Body != "hello there" {
		t.Fatal(f, err)
	}
}

// TestClientPrintsAndAcks: the terminal client prints each frame and acks
// the events it printed.
func TestClientPrintsAndAcks(t *testing.T) {
	e := startEdge(t, "")
	c := e.connect(1, "since=0")
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = printFrames(c.ws, writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}))
	}()
	e.origin.appendAndPublish(1, "message", map[string]any{"conversation_id": 1, "body": "hi"})
	deadline := time.Now().Add(wait)
	for {
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, `"type":"event"`) && strings.Contains(s, `\"body\":\"hi\"`) || strings.Contains(s, `"body":"hi"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("printed %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.ws.Close()
	<-done
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
