package sparkv1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure Dial.
type Options struct {
	// Edge is the edge's base URL (http://host:port or ws://host:port).
	Edge string
	// Token is the bearer token, sent in Authorization (never logged).
	Token string
	// Since resumes after this seq when HasSince is set (since=0 replays
	// the whole log); without it the connection is live only.
	Since    int64
	HasSince bool
	// Dialer dials; nil means a dialer with a 10 s handshake timeout.
	Dialer *websocket.Dialer
	// WriteTimeout bounds each frame write (default 5 s).
	WriteTimeout time.Duration
}

// Conn is one spark.v1 connection. Writes may come from several goroutines;
// reads from one at a time.
type Conn struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	wmu          sync.Mutex
}

// URL is the realtime endpoint of edge with since when hasSince.
func URL(edge string, since int64, hasSince bool) (string, error) {
	u, err := url.Parse(strings.TrimRight(edge, "/"))
	if err != nil {
		return "", fmt.Errorf("edge URL %q: %w", edge, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("edge URL %q: scheme must be http(s) or ws(s)", edge)
	}
	u.Path += "/api/realtime"
	if hasSince {
		u.RawQuery = "since=" + strconv.FormatInt(since, 10)
	}
	return u.String(), nil
}

// Dial opens a connection. A refusal before the upgrade is an error with
// the status and the start of the body (a problem+json).
func Dial(ctx context.Context, o Options) (*Conn, error) {
	u, err := URL(o.Edge, o.Since, o.HasSince)
	if err != nil {
		return nil, err
	}
	d := o.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	dd := *d
	dd.Subprotocols = []string{Subprotocol}
	ws, res, err := dd.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + o.Token}})
	if err != nil {
		if res != nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			_ = res.Body.Close()
			return nil, fmt.Errorf("connect %s: %s %s", u, res.Status, body)
		}
		return nil, fmt.Errorf("connect %s: %w", u, err)
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close()
		return nil, fmt.Errorf("connect %s: the server chose subprotocol %q, not %s", u, ws.Subprotocol(), Subprotocol)
	}
	wt := o.WriteTimeout
	if wt <= 0 {
		wt = 5 * time.Second
	}
	return &Conn{ws: ws, writeTimeout: wt}, nil
}

// Write sends one client frame (SendFrame, TypingFrame, ReadFrame,
// AckFrame, or any JSON text).
func (c *Conn) Write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// Send sends a message.
func (c *Conn) Send(conversationID int64, body, clientMsgID string) error {
	return c.Write(SendFrame(conversationID, body, clientMsgID))
}

// Typing sends a typing indicator.
func (c *Conn) Typing(conversationID int64) error { return c.Write(TypingFrame(conversationID)) }

// Ack acknowledges every event up to seq.
func (c *Conn) Ack(seq int64) error { return c.Write(AckFrame(seq)) }

// ReadMessage reads one server message, as raw bytes.
func (c *Conn) ReadMessage() ([]byte, error) {
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return msg, nil
}

// ReadFrames reads one server message and decodes its frames. A decoding
// error is wrapped in ErrBadFrame and returned with the good frames before
// it; the connection stays usable.
func (c *Conn) ReadFrames() ([]Frame, error) {
	msg, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	return DecodeMessage(msg)
}

// Close ends the connection with a normal close frame.
func (c *Conn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

// Abort drops the TCP connection without a close frame, as a phone losing
// its network does.
func (c *Conn) Abort() error { return c.ws.NetConn().Close() }

// CloseCode is the close code of a read error (0 when the connection ended
// without a close frame or err is not a close).
func CloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
