package eventbus

import (
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// StreamPath is where the origin serves its event stream.
const StreamPath = "/internal/events"

// StreamTimeouts are the liveness settings of either end of the origin
// stream. Each end pings; a peer silent for PingInterval + PongTimeout is
// gone.
type StreamTimeouts struct {
	// WriteTimeout bounds one write. Default 5 s.
	WriteTimeout time.Duration
	// PingInterval spaces pings. Default 15 s.
	PingInterval time.Duration
	// PongTimeout is how long an answer to a ping may take. Default 10 s.
	PongTimeout time.Duration
}

func (t *StreamTimeouts) fill() {
	orDefault(&t.WriteTimeout, 5*time.Second)
	orDefault(&t.PingInterval, 15*time.Second)
	orDefault(&t.PongTimeout, 10*time.Second)
}

// Sizes on the origin stream.
const (
	// maxStreamMessage bounds the lines coalesced into one message.
	maxStreamMessage = 256 << 10
	// maxStreamRead bounds a message either end accepts: a longest line
	// (a payload of MaxPayload) fits.
	maxStreamRead = 1 << 20
	// streamBuffer is the WebSocket read and write buffer size: few
	// connections, much traffic each.
	streamBuffer = 32 << 10
	// usersPerFrame bounds the users of one sub or unsub frame.
	usersPerFrame = 1000
)

func (t StreamTimeouts) limits(queueFrames, queueBytes int) wsLimits {
	return wsLimits{
		queueFrames: queueFrames, queueBytes: queueBytes,
		maxMessage: maxStreamMessage, maxRead: maxStreamRead,
		writeTimeout: t.WriteTimeout, pingInterval: t.PingInterval, pongTimeout: t.PongTimeout,
	}
}

// checkPayload returns m's payload in the form a line carries (see
// linePayload), or why it cannot travel.
func checkPayload(m *Message) ([]byte, error) {
	if err := checkMessage(m); err != nil {
		return nil, err
	}
	return linePayload(m.Payload)
}

// closeCode is the close code for why a read loop ended.
func closeCode(err error) int {
	var syntax *frameError
	if errors.As(err, &syntax) {
		return websocket.CloseInvalidFramePayloadData
	}
	return websocket.CloseGoingAway
}

// frameError is a frame the peer sent that could not be used.
type frameError struct{ err error }

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }
