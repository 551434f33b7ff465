package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/refhub"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

func TestRealtimeLineFrames(t *testing.T) {
	n := 0
	for line, want := range map[string]string{
		"/send 7 hello there":    `{"type":"send","conversation_id":7,"body":"hello there","client_msg_id":"cli-5-1"}`,
		"/typing 7":              `{"type":"typing","conversation_id":7}`,
		"/read 7 12":             `{"type":"read","conversation_id":7,"message_id":12}`,
		"/ack 3":                 `{"type":"ack","seq":3}`,
		`{"type":"ack","seq":1}`: `{"type":"ack","seq":1}`,
		"  ":                     "",
	} {
		got, err := lineFrame(line, 5, &n)
		if err != nil || string(got) != want {
			t.Errorf("%q: %s %v", line, got, err)
		}
	}
	for _, bad := range []string{"/dance", "{not json"} {
		if _, err := lineFrame(bad, 5, &n); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRealtimePrintsAndAcks: the terminal client prints what a peer sends
// and acks it (against the reference hub: a real WebSocket server).
func TestRealtimePrintsAndAcks(t *testing.T) {
	srv := httptest.NewServer(refhub.New(refhub.Options{Secret: loadtest.DevJWTSecret}))
	defer srv.Close()
	dial := func(user int64) *sparkv1.Conn {
		tok, _ := loadtest.MintToken(loadtest.DevJWTSecret, user, time.Hour, time.Now())
		// since=0: the hub registers a connection after its handshake, so
		// a live-only receiver could miss a message sent in between; a
		// resume from 0 replays the log and registers in one step.
		c, err := sparkv1.Dial(context.Background(), sparkv1.Options{Edge: srv.URL, Token: tok, HasSince: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	recv, send := dial(2), dial(1)
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- printFrames(recv, writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}))
	}()
	frame, _ := lineFrame("/send 1 hi there", 1, new(int))
	if err := send.Write(frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, `"type":"event"`) && strings.Contains(s, `"body":"hi there"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("printed %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = recv.Close()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("printFrames: %v", err)
	}
	_ = send.Close()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
