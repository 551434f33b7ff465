package realtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// connConfig is what a connection takes from the config that accepted it.
// A reload's new options apply to connections accepted after it; the ones
// open keep theirs.
type connConfig struct {
	queueFrames, queueBytes   int
	pingInterval, pongTimeout time.Duration
	writeTimeout              time.Duration
	maxFrame                  int64
	rate, burst               float64
	maxInFlight               int           // origin calls per connection
	admission                 time.Duration // bounds the work before the upgrade
	origin                    *originClient
	logger                    *zap.Logger
}

// Bounds of the writer.
const (
	// maxCoalesce bounds a message the writer makes of queued frames (a
	// larger frame goes alone).
	maxCoalesce = 64 << 10
	// closeGrace is how long the server waits for the client's close
	// frame after sending its own.
	closeGrace = time.Second
	// typingPublishTimeout bounds one bus call of typing notices.
	typingPublishTimeout = time.Second
)

// conn is one client's WebSocket: a reader goroutine (client frames), a
// writer goroutine that runs only while there is something to write (the
// queue, a ping, the close), and the delivery state. An idle connection
// holds one goroutine, its reader.
type conn struct {
	user    int64
	token   string // the bearer token: the origin's calls carry it; never logged
	ws      *websocket.Conn
	cfg     *connConfig
	hub     *hub
	metrics *metrics
	q       *queue
	seq     sequencer
	peers   peers
	calls   orderedCalls
	limiter limiter
	acked   atomic.Int64

	// firstPage is a resume's first page of the origin's log, read before
	// the upgrade after firstSince; the first fetch takes it.
	firstPage  *eventsPage
	firstSince int64

	// ctx ends when the connection does: in-flight origin calls stop.
	ctx    context.Context
	cancel context.CancelFunc

	// writing is set while a writer goroutine runs (and from the
	// connection's creation until start, and for good once it ended): a
	// kick starts a writer only when it wins writing from false.
	writing atomic.Bool
	pingDue atomic.Bool // the pinger fired: the writer sends a ping
	pinger  *time.Timer // every ping interval, re-armed by the writer

	closeMu    sync.Mutex
	closing    closeRequest  // the first close asked for
	stop       chan struct{} // closed when a close is asked for
	readerDone chan struct{} // closed when the reader returned
	expiry     *time.Timer   // closes with 4001 at the token's exp
}

// closeRequest is how a connection is to end.
type closeRequest struct {
	code   int
	reason string
	// send: write a close frame (false when the client or gorilla already
	// did, or the transport is gone).
	send bool
	// flush: write what is queued first.
	flush bool
}

func newConn(h *hub, cfg *connConfig, user int64, token string, since int64, resume bool) *conn {
	ctx, cancel := context.WithCancel(h.ctx)
	c := &conn{
		user: user, token: token, cfg: cfg, hub: h, metrics: h.metrics,
		ctx:        ctx,
		cancel:     cancel,
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	c.q = newQueue(cfg.queueFrames, cfg.queueBytes, c.kick)
	c.writing.Store(true) // no writer before start
	c.limiter.init(cfg.rate, cfg.burst, time.Now())
	c.calls.slots = cfg.maxInFlight
	// Live events are held until the first fetch set the watermark (and
	// loaded the conversations).
	c.seq.fetching = true
	c.seq.known = resume
	c.seq.last = since
	return c
}

// start runs the connection on ws until its token expires at exp.
func (c *conn) start(ws *websocket.Conn, exp time.Time) {
	c.ws = ws
	c.metrics.active.Inc()
	c.expiry = time.AfterFunc(time.Until(exp), func() {
		c.requestClose(closeRequest{code: closeTokenExpired, reason: tokenExpiredReason, send: true})
	})
	c.pinger = time.AfterFunc(c.cfg.pingInterval, func() {
		c.pingDue.Store(true)
		c.kick()
	})
	go c.readLoop()
	go c.fetchLoop()
	// Writers may run from now on; what was queued (or asked) before
	// gets one.
	c.writing.Store(false)
	if c.hasWork() {
		c.kick()
	}
}

// requestClose asks the writer to end the connection; the first request
// wins. It reports whether this one did.
func (c *conn) requestClose(r closeRequest) bool {
	c.closeMu.Lock()
	if c.closing.code != 0 {
		c.closeMu.Unlock()
		return false
	}
	c.closing = r
	close(c.stop)
	c.closeMu.Unlock()
	if r.code == closeTryAgainLater {
		c.metrics.slowConsumers.Inc()
	}
	c.kick()
	return true
}

// closeRequested returns the close asked for (code 0: none).
func (c *conn) closeRequested() closeRequest {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closing
}

// enqueue queues a frame the client must get; a full queue makes the
// client a slow consumer (1013: it resumes from its last ack).
func (c *conn) enqueue(f outFrame) bool {
	if c.q.push(f) {
		return true
	}
	c.requestClose(closeRequest{code: closeTryAgainLater, reason: slowConsumerReason, send: true})
	return false
}

// sendError queues an error frame.
func (c *conn) sendError(e *frameError) {
	c.enqueue(outFrame{data: appendErrorFrame(nil, e), kind: kindOutError})
}

// kick makes sure a writer runs: it starts one unless one runs (or the
// connection is not started, or is over).
func (c *conn) kick() {
	if c.writing.CompareAndSwap(false, true) {
		go c.writeRun()
	}
}

// hasWork reports whether there is something for a writer: a close asked
// for, queued frames, a ping due.
func (c *conn) hasWork() bool {
	select {
	case <-c.stop:
		return true
	default:
	}
	return c.q.len() > 0 || c.pingDue.Load()
}

// writeRun is the connection's only writer while it runs: it writes until
// nothing is left, then returns, unless work arrived as it gave up its
// turn (whoever brought it saw the writer still running).
func (c *conn) writeRun() {
	for c.writeAll() {
		c.writing.Store(false)
		if !c.hasWork() || !c.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// writeAll writes what there is: the close first when one is asked for
// (the connection then ends, and it reports false), else a ping when one
// is due and the queue, coalesced into messages.
func (c *conn) writeAll() bool {
	var batch []outFrame
	for {
		select {
		case <-c.stop:
			c.writeClose(batch[:0])
			c.finish()
			return false
		default:
		}
		if c.pingDue.Swap(false) { // before the queue: a busy writer still pings
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.writeTimeout)); err != nil {
				c.requestClose(closeRequest{code: closeAbnormal})
				c.finish()
				return false
			}
			c.pinger.Reset(c.cfg.pingInterval)
		}
		if c.q.len() == 0 {
			return true
		}
		var ok bool
		if batch, ok = c.writeQueued(batch[:0]); !ok {
			c.finish()
			return false
		}
	}
}

// writeClose ends the connection as asked: the queue first if asked, then
// a close frame, then a short wait for the client's.
func (c *conn) writeClose(batch []outFrame) {
	r := c.closeRequested()
	for r.flush && c.q.len() > 0 {
		var ok bool
		if batch, ok = c.writeQueued(batch[:0]); !ok {
			return
		}
	}
	if !r.send {
		return
	}
	msg := websocket.FormatCloseMessage(r.code, r.reason)
	if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.cfg.writeTimeout)) != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readerDone:
	case <-t.C:
	}
}

// writeQueued writes what is queued as one message (up to maxCoalesce:
// then more), frames separated by newlines. It reports false when the
// write failed (the connection is then closing).
func (c *conn) writeQueued(batch []outFrame) ([]outFrame, bool) {
	batch = c.q.take(batch, maxCoalesce)
	if len(batch) == 0 {
		return batch, true
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err == nil {
		for i := range batch {
			if i > 0 {
				_, _ = w.Write(newline)
			}
			if _, err = w.Write(batch[i].data); err != nil {
				break
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		c.requestClose(closeRequest{code: closeAbnormal})
		return batch, false
	}
	now := time.Now()
	for i := range batch {
		c.metrics.frames[batch[i].kind].Inc()
		c.metrics.delivered(batch[i].at, now)
		batch[i] = outFrame{} // drop the reference to the frame's bytes
	}
	return batch, true
}

var newline = []byte{'\n'}

// finish releases the connection once the writer is done (writing stays
// set: no writer starts again).
func (c *conn) finish() {
	c.pinger.Stop()
	c.expiry.Stop()
	_ = c.ws.Close()
	<-c.readerDone
	c.cancel()
	c.hub.unregister(c)
	c.metrics.active.Dec()
	c.metrics.closed(c.closeRequested().code)
}

// readLoop reads client messages until the connection ends.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	c.ws.SetReadLimit(c.cfg.maxFrame)
	alive := c.cfg.pingInterval + c.cfg.pongTimeout
	_ = c.ws.SetReadDeadline(time.Now().Add(alive))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(alive)) })
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		select {
		case <-c.stop: // closing: read on only for the client's close frame
			continue
		default:
		}
		c.handleMessage(mt, data)
	}
}

// readFailed ends the connection after a read error: the client's close
// (gorilla answered it), a message over max_frame (gorilla sent 1009), or
// a dead transport.
func (c *conn) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		c.requestClose(closeRequest{code: ce.Code})
	case errors.Is(err, websocket.ErrReadLimit):
		c.requestClose(closeRequest{code: closeTooBig})
	default:
		c.requestClose(closeRequest{code: closeAbnormal})
	}
}

// handleMessage handles one client message: one frame.
func (c *conn) handleMessage(mt int, data []byte) {
	if mt != websocket.TextMessage {
		c.metrics.frames[kindInInvalid].Inc()
		c.sendError(&frameError{code: codeBadFrame, detail: "binary messages are not part of " + Subprotocol + ": send JSON text"})
		return
	}
	if !utf8.Valid(data) {
		c.metrics.frames[kindInInvalid].Inc()
		c.requestClose(closeRequest{code: closeInvalidUTF8, reason: invalidUTF8Reason, send: true, flush: true})
		return
	}
	if ok, flood := c.limiter.allow(time.Now()); !ok {
		c.metrics.frames[kindInInvalid].Inc()
		if flood {
			c.requestClose(closeRequest{code: closePolicy, reason: policyReason, send: true, flush: true})
			return
		}
		c.sendError(&frameError{code: codeRateLimited, detail: "too many frames: slow down or the connection is closed (1008)"})
		return
	}
	f, ferr := decodeClientFrame(data)
	if ferr != nil {
		c.metrics.frames[kindInInvalid].Inc()
		c.sendError(ferr)
		return
	}
	c.metrics.frames[inKinds[f.Type]].Inc()
	switch f.Type {
	case typeSend:
		c.send(f)
	case typeRead:
		c.read(f)
	case typeTyping:
		c.typing(f)
	case typeAck:
		c.ack(f)
	}
}
