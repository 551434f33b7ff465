package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/eventbus/bustest"
	"github.com/spark-edge/spark/internal/testutil"
)

// The origin stream over a real HTTP server: Cut restarts the origin's
// StreamServer.
func TestStream(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Harness { return newStreamHarness(t) })
}

const token = "test-events-token"

// startServer serves a StreamServer over real HTTP.
func startServer(t *testing.T, o eventbus.StreamServerOptions) (*eventbus.StreamServer, string) {
	t.Helper()
	o.Token, o.Logger = token, testLogger()
	srv, err := eventbus.NewStreamServer(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { _ = srv.Close(); hs.Close() })
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + eventbus.StreamPath
}

// dialRaw connects a bare WebSocket client with header h.
func dialRaw(t *testing.T, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestStreamServerRefuses(t *testing.T) {
	srv, url := startServer(t, eventbus.StreamServerOptions{})
	for name, tc := range map[string]struct {
		h    http.Header
		code int
	}{
		"no token":       {http.Header{}, http.StatusUnauthorized},
		"wrong token":    {bearer(token + "x"), http.StatusUnauthorized},
		"other scheme":   {http.Header{"Authorization": {"Basic " + token}}, http.StatusUnauthorized},
		"from a browser": {http.Header{"Authorization": {"Bearer " + token}, "Origin": {"https://evil.example"}}, http.StatusForbidden},
	} {
		_, resp, err := dialRaw(t, url, tc.h)
		if err == nil || resp == nil || resp.StatusCode != tc.code {
			t.Errorf("%s: %v (%v), want HTTP %d", name, err, resp, tc.code)
		}
	}
	resp, err := http.Post("http"+strings.TrimPrefix(url, "ws"), "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v, want 405", err, resp)
	}
	_ = srv.Close()
	if _, resp, _ := dialRaw(t, url, bearer(token)); resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: %v, want 503", resp)
	}
}

// readLines reads messages until n lines came, and returns the lines and
// the number of messages they came in.
func readLines(t *testing.T, ws *websocket.Conn, n int) ([]string, int) {
	t.Helper()
	var lines []string
	msgs := 0
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(lines) < n {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d lines: %v", len(lines), err)
		}
		msgs++
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return lines, msgs
}

func writeLine(t *testing.T, ws *websocket.Conn, line string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(line+"\n")); err != nil {
		t.Fatal(err)
	}
}

// The frames on the wire are the documented ones; queued frames are
// coalesced into few messages; an unknown op is skipped, a malformed line
// ends the connection with 1007.
func TestStreamWireFormat(t *testing.T) {
	srv, url := startServer(t, eventbus.StreamServerOptions{})
	ws, _, err := dialRaw(t, url, bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writeLine(t, ws, `{"op":"sub","id":1,"users":[5,6]}`)
	if l, _ := readLines(t, ws, 1); l[0] != `{"ack":1}` {
		t.Fatalf("sub answered %q", l[0])
	}
	if err := srv.Publish(ctx, eventbus.Message{UserID: 5, Seq: 3, Payload: []byte("{\n \"a\": 1\n}")}); err != nil {
		t.Fatal(err)
	}
	writeLine(t, ws, `{"op":"hello","v":2}`+"\n"+`{"op":"pub","user":6,"payload":{"t":1}}`)
	want := []string{`{"user":5,"seq":3,"payload":{"a":1}}`, `{"user":6,"payload":{"t":1}}`}
	if l, _ := readLines(t, ws, 2); strings.Join(l, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", l, want)
	}
	var batch []eventbus.Message
	for i := range 500 {
		batch = append(batch, eventbus.Message{UserID: 5, Seq: int64(4 + i), Payload: []byte(`{}`)})
	}
	if err := srv.Publish(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if lines, msgs := readLines(t, ws, 500); len(lines) != 500 || msgs > 100 {
		t.Fatalf("500 frames came as %d lines in %d messages, want 500 lines in few", len(lines), msgs)
	}
	for _, bad := range []eventbus.Message{{UserID: 5, Payload: []byte(`{"a":`)}, {UserID: 0, Payload: []byte(`{}`)}} {
		if err := srv.Publish(ctx, bad); err == nil {
			t.Errorf("published %+v", bad)
		}
	}
	writeLine(t, ws, `{"op":"sub","users":[1`)
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("after a malformed frame: %v, want close 1007", err)
	}
	testutil.Eventually(t, 30*time.Second, "the edge's users to go offline", func() bool {
		on, _ := srv.Online(ctx, 5)
		return !on
	})
}

// An edge that reads too slowly is disconnected; it reconnects, signals
// Reconnected, and delivery resumes.
func TestStreamSlowEdge(t *testing.T) {
	srv, url := startServer(t, eventbus.StreamServerOptions{QueueFrames: 64, QueueBytes: 1 << 20})
	release := make(chan struct{})
	var got atomic.Int64
	c, err := eventbus.NewStreamClient(eventbus.StreamClientOptions{URL: url, Token: token, Logger: testLogger(),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, func(m eventbus.Message) {
		<-release
		got.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Subscribe(ctx, 1); err != nil {
		t.Fatal(err)
	}
	payload := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 16<<10)...), '"')
	testutil.Eventually(t, 30*time.Second, "the slow edge's disconnection", func() bool {
		_ = srv.Publish(ctx, eventbus.Message{UserID: 1, Seq: 1, Payload: payload})
		return srv.Stats().SlowDisconnects > 0
	})
	close(release)
	select {
	case <-c.Reconnected():
	case <-time.After(30 * time.Second):
		t.Fatal("no Reconnected after the slow edge was disconnected")
	}
	before := got.Load()
	if err := srv.Publish(ctx, eventbus.Message{UserID: 1, Seq: 2, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "delivery after the reconnection", func() bool { return got.Load() > before })
}

func TestStreamClientOptions(t *testing.T) {
	h := func(eventbus.Message) {}
	for _, o := range []eventbus.StreamClientOptions{
		{URL: "", Token: token}, {URL: "ftp://origin", Token: token}, {URL: "http://origin:8081"},
	} {
		if c, err := eventbus.NewStreamClient(o, h); err == nil {
			_ = c.Close()
			t.Errorf("%+v accepted", o)
		}
	}
	// A refused token is no constructor error: the client keeps trying,
	// and Subscribe says it is not connected.
	_, url := startServer(t, eventbus.StreamServerOptions{})
	c, err := eventbus.NewStreamClient(eventbus.StreamClientOptions{URL: strings.TrimSuffix(url, eventbus.StreamPath), Token: "wrong", Logger: testLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(context.Background(), 1); !errors.Is(err, eventbus.ErrNotConnected) {
		t.Fatalf("Subscribe with a refused token: %v, want ErrNotConnected", err)
	}
	if _, err := eventbus.NewStreamServer(eventbus.StreamServerOptions{}); err == nil {
		t.Error("a stream server without a token")
	}
}
