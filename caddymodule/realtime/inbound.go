package realtime

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// send stores a message through the origin (membership, blocks and
// idempotency are the origin's); the client gets a sent frame once the
// origin answered 200/201, or an error frame.
func (c *conn) send(f clientFrame) {
	c.calls.run(c.ctx, f.ConversationID, func(ctx context.Context) {
		msg, readAfter, err := c.cfg.origin.send(ctx, c.token, f.ConversationID, f.Body, f.ClientMsgID)
		if err != nil {
			c.callFailed(f.ClientMsgID, err)
			return
		}
		c.enqueue(outFrame{data: appendSentFrame(nil, f.ClientMsgID, msg, readAfter), kind: kindOutSent})
	})
}

// read records a read receipt through the origin. Success has no frame:
// the origin's read event comes to every device of the reader.
func (c *conn) read(f clientFrame) {
	c.calls.run(c.ctx, f.ConversationID, func(ctx context.Context) {
		if err := c.cfg.origin.read(ctx, c.token, f.ConversationID, f.MessageID); err != nil {
			c.callFailed(typeRead, err)
		}
	})
}

// callFailed answers a failed origin call: an error frame, or, when the
// origin refused the token, the end of the connection (4003).
func (c *conn) callFailed(ref string, err error) {
	if c.ctx.Err() != nil {
		return
	}
	if statusOf(err) == http.StatusUnauthorized {
		c.requestClose(closeRequest{code: closeTokenRefused, reason: tokenRefusedReason, send: true})
		return
	}
	if statusOf(err) == 0 || statusOf(err) >= 500 {
		c.cfg.logger.Warn("origin call failed", zap.Int64("user", c.user), zap.Error(err))
	}
	c.sendError(asFrameError(ref, err))
}

// typing publishes an ephemeral typing frame to the conversation's peer,
// if the conversation is the user's (as the edge knows it: from the
// origin at connect, then from match and unmatch events).
func (c *conn) typing(f clientFrame) {
	peer, known := c.peers.peer(f.ConversationID)
	if !known {
		c.sendError(&frameError{ref: typeTyping, code: codeNotMember, detail: "conversation " + strconv.FormatInt(f.ConversationID, 10) + " is not one of yours"})
		return
	}
	payload := appendTypingFrame(nil, f.ConversationID, c.user)
	if !c.hub.typing.publish(eventbus.Message{UserID: peer, Payload: payload}) {
		c.cfg.logger.Debug("typing dropped: the bus is behind", zap.Int64("user", c.user))
	}
}

// ack records the client's acknowledgement; one beyond what was delivered
// gets an error frame.
func (c *conn) ack(f clientFrame) {
	if f.Seq > c.seq.delivered() {
		c.sendError(&frameError{ref: typeAck, code: codeBadAck, detail: "seq " + strconv.FormatInt(f.Seq, 10) + " was not delivered on this connection"})
		return
	}
	for {
		old := c.acked.Load()
		if f.Seq <= old || c.acked.CompareAndSwap(old, f.Seq) {
			return
		}
	}
}

// orderedCalls runs a connection's origin calls: at most slots at a time,
// and one at a time per conversation, in the order the client sent them
// (two messages sent in a row are stored in that order).
type orderedCalls struct {
	slots int
	mu    sync.Mutex
	sem   chan struct{}           // made at the first call
	tails map[int64]chan struct{} // conversation -> the last call's done
}

// run starts fn for conversation conv after the conversation's previous
// call. It blocks while slots calls are in flight (the reader then stops
// reading: TCP pushes back), or until ctx ends.
func (o *orderedCalls) run(ctx context.Context, conv int64, fn func(context.Context)) {
	o.mu.Lock()
	if o.sem == nil {
		o.sem = make(chan struct{}, o.slots)
		o.tails = make(map[int64]chan struct{})
	}
	sem := o.sem
	o.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	done := make(chan struct{})
	o.mu.Lock()
	prev := o.tails[conv]
	o.tails[conv] = done
	o.mu.Unlock()
	go func() {
		defer func() {
			close(done)
			o.mu.Lock()
			if o.tails[conv] == done {
				delete(o.tails, conv)
			}
			o.mu.Unlock()
			<-sem
		}()
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		fn(ctx)
	}()
}
