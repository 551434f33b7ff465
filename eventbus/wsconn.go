package eventbus

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsLimits are one end's settings for an origin stream connection.
type wsLimits struct {
	// queueFrames and queueBytes bound the lines waiting to be written.
	queueFrames, queueBytes int
	// maxMessage is the most bytes of lines coalesced into one WebSocket
	// message (a longer line goes alone); maxRead bounds what is read.
	maxMessage int
	maxRead    int64
	// writeTimeout bounds each write; pingInterval spaces pings; a peer
	// silent for pingInterval + pongTimeout is gone.
	writeTimeout, pingInterval, pongTimeout time.Duration
}

// keptBuffer is the largest write buffer a connection keeps between
// bursts.
const keptBuffer = 1 << 20

// wsConn is one end of an origin stream connection: a WebSocket carrying
// NDJSON lines. Lines are queued in a bounded buffer that one writer
// goroutine drains, coalescing whatever is queued into few messages; the
// writer also pings. The owner reads with readLoop.
type wsConn struct {
	ws  *websocket.Conn
	lim wsLimits

	mu     sync.Mutex
	out    []byte // queued lines
	frames int    // lines in out
	dead   bool

	wake      chan struct{}
	done      chan struct{} // closed by close
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var (
	// errQueueFull: the peer reads too slowly; the connection is closed.
	errQueueFull = errors.New("eventbus: stream send queue full")
	// errConnClosed: the connection has ended.
	errConnClosed = errors.New("eventbus: stream connection closed")
)

// newWSConn starts the writer of ws.
func newWSConn(ws *websocket.Conn, lim wsLimits) *wsConn {
	c := &wsConn{ws: ws, lim: lim, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.wg.Add(1)
	go c.writeLoop()
	return c
}

// send queues f. When the queue is full the connection is closed (1013,
// try again later: the peer reconnects and catches up) and errQueueFull
// returned. It never blocks on the network.
func (c *wsConn) send(f *frame) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return errConnClosed
	}
	n := len(c.out)
	c.out = appendFrame(c.out, f)
	if c.frames+1 > c.lim.queueFrames || len(c.out) > c.lim.queueBytes {
		c.out = c.out[:n]
		c.dead = true
		c.mu.Unlock()
		go c.close(websocket.CloseTryAgainLater, "slow consumer: reconnect")
		return errQueueFull
	}
	c.frames++
	c.mu.Unlock()
	signal(c.wake)
	return nil
}

// writeLoop writes what is queued, and pings, until the connection ends.
func (c *wsConn) writeLoop() {
	defer c.wg.Done()
	ping := time.NewTicker(c.lim.pingInterval)
	defer ping.Stop()
	var batch []byte
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.lim.writeTimeout)); err != nil {
				c.end(websocket.CloseGoingAway, "")
				return
			}
			continue
		case <-c.wake:
		}
		c.mu.Lock()
		batch, c.out = c.out, batch[:0]
		c.frames = 0
		c.mu.Unlock()
		if err := c.write(batch); err != nil {
			c.end(websocket.CloseGoingAway, "")
			return
		}
		if cap(batch) > keptBuffer {
			batch = nil // a burst's buffer goes back to the GC
		}
	}
}

// write sends lines in messages of at most maxMessage bytes, cut between
// lines.
func (c *wsConn) write(lines []byte) error {
	for len(lines) > 0 {
		n := len(lines)
		if n > c.lim.maxMessage {
			n = bytes.LastIndexByte(lines[:c.lim.maxMessage], '\n') + 1
			if n == 0 { // one long line
				n = bytes.IndexByte(lines, '\n') + 1
			}
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.lim.writeTimeout))
		if err := c.ws.WriteMessage(websocket.TextMessage, lines[:n]); err != nil {
			return fmt.Errorf("eventbus: stream write: %w", err)
		}
		lines = lines[n:]
	}
	return nil
}

// readLoop reads messages until the connection ends, decodes their lines
// and passes each frame to handle (its payload is valid only during the
// call). It returns why reading stopped: the connection's error, a frame
// that did not decode, or handle's error.
func (c *wsConn) readLoop(handle func(*frame) error) error {
	c.ws.SetReadLimit(c.lim.maxRead)
	alive := func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.lim.pingInterval + c.lim.pongTimeout))
	}
	c.ws.SetPongHandler(alive)
	c.ws.SetPingHandler(func(data string) error {
		_ = alive(data)
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.lim.writeTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
	var msg bytes.Buffer
	var f frame
	for {
		_ = alive("")
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		msg.Reset()
		if _, err := msg.ReadFrom(r); err != nil {
			return err
		}
		if typ != websocket.TextMessage {
			return errors.New("eventbus: stream: binary message")
		}
		for line := range bytes.Lines(msg.Bytes()) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			err := decodeFrame(line, &f)
			switch {
			case errors.Is(err, errUnknownOp):
				continue // a newer peer's frame
			case err != nil:
				return &frameError{err}
			}
			if err := handle(&f); err != nil {
				return err
			}
		}
	}
}

// close ends the connection and waits for the writer. Safe to call more
// than once, from any goroutine but the writer.
func (c *wsConn) close(code int, reason string) {
	c.end(code, reason)
	c.wg.Wait()
}

// end ends the connection with a close message (best effort), once.
func (c *wsConn) end(code int, reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		close(c.done)
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(min(c.lim.writeTimeout, time.Second)))
		_ = c.ws.Close()
	})
}

// closed is closed when the connection has ended.
func (c *wsConn) closed() <-chan struct{} { return c.done }
