package realtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/spark-edge/spark/internal/backoff"
	"go.uber.org/zap"
)

// liveEvent is a durable event from the bus, decoded and framed once for
// all of its user's connections on this edge.
type liveEvent struct {
	ev    event
	frame []byte // the event frame; shared, never written to
}

// newLiveEvent decodes a bus payload into a liveEvent.
func newLiveEvent(seq int64, payload []byte) (*liveEvent, error) {
	raw, err := compactJSON(payload)
	if err != nil {
		return nil, err
	}
	ev, err := decodeEvent(raw)
	if err != nil {
		return nil, err
	}
	if ev.Seq != seq {
		return nil, errors.New("the bus's seq and the event's differ")
	}
	return &liveEvent{ev: ev, frame: appendEventFrame(nil, raw)}, nil
}

// sequencer is a connection's delivery state: the watermark (the highest
// seq queued), and, while a fetch from the origin runs, the live events
// held until it ends.
type sequencer struct {
	mu       sync.Mutex
	last     int64
	known    bool // last is set (false until a live-only connection learnt the log's end, or got its first event)
	fetching bool
	again    bool // fetch once more when this fetch ends (held events dropped, bus reconnected)
	held     []*liveEvent
}

// maxHeld bounds the live events held during a fetch; more are dropped
// and fetched again.
const maxHeld = 256

// delivered returns the watermark.
func (s *sequencer) delivered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// deliverLive takes a durable event from the bus: the next one is queued,
// an old one dropped (a duplicate), one after a gap starts a fetch of the
// missing ones (later live events held meanwhile).
func (c *conn) deliverLive(le *liveEvent) {
	s := &c.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known && !s.fetching {
		s.last, s.known = le.ev.Seq-1, true // unanchored: this event starts the connection
	}
	if s.fetching {
		if len(s.held) < maxHeld {
			s.held = append(s.held, le)
		} else {
			s.again = true
		}
		return
	}
	switch {
	case le.ev.Seq <= s.last:
	case le.ev.Seq == s.last+1:
		c.queueEventLocked(le)
	default:
		s.fetching = true
		s.held = append(s.held, le)
		go c.fetchLoop()
	}
}

// catchUp fetches what the connection may have missed (the bus
// reconnected).
func (c *conn) catchUp() {
	s := &c.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetching {
		s.again = true
		return
	}
	s.fetching = true
	go c.fetchLoop()
}

// queueEventLocked queues a live event that follows the watermark.
//
// The connection's conversations follow the event before its frame is
// queued: the writer may send the frame at once, and a client that has
// read a match must find the conversation known when it types in it. (A
// failed enqueue closes the connection, so the early update costs nothing.)
func (c *conn) queueEventLocked(le *liveEvent) {
	c.peers.apply(le.ev)
	if c.enqueue(outFrame{data: le.frame, kind: kindOutEvent, at: le.ev.At}) {
		c.seq.last = le.ev.Seq
	}
}

// errLogGap is a page of the origin's log that does not follow the
// watermark: events were pruned (or lost) in between.
var errLogGap = errors.New("the origin's log has a gap after the watermark")

// errBadLog is an event from the origin's log the edge cannot read: the
// connection cannot go on in order (1011).
var errBadLog = errors.New("an undecodable event in the origin's log")

// fetchLoop runs while the sequencer is fetching: it brings the
// connection up to the origin's log, then releases the held live events; it retries with
// backoff while the origin fails.
func (c *conn) fetchLoop() {
	bo := backoff.Backoff{Min: retryMin, Max: retryMax}
	for c.ctx.Err() == nil {
		before := c.seq.delivered()
		err := c.fetchOnce(c.ctx)
		if err == nil {
			if c.releaseHeld() {
				return
			}
			if c.seq.delivered() != before {
				bo.Reset()
				continue
			}
			// No progress: a live event the origin's log does not show
			// yet. Wait a little.
		}
		switch {
		case c.ctx.Err() != nil:
			return
		case statusOf(err) == http.StatusUnauthorized:
			c.requestClose(closeRequest{code: closeTokenRefused, reason: tokenRefusedReason, send: true})
			return
		case statusOf(err) == http.StatusGone || errors.Is(err, errLogGap):
			c.resync()
			return
		case errors.Is(err, errBadLog):
			c.cfg.logger.Error("closing a connection", zap.Int64("user", c.user), zap.Error(err))
			c.requestClose(closeRequest{code: closeInternal, reason: internalErrorReason, send: true})
			return
		case err != nil:
			c.cfg.logger.Debug("fetching events failed; retrying", zap.Int64("user", c.user), zap.Error(err))
		}
		if !bo.Wait(c.ctx) {
			return
		}
	}
}

// Backoff of fetches from the origin.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// learnLogEnd sets the watermark of a live-only connection to the end of
// the user's log: the connection delivers what is stored after it. The
// origin tells the end with any page; when even seq 1 is no longer kept
// (410), the first live event sets it instead. The handler calls it before
// the upgrade, so whatever is stored once the client holds its connection
// is delivered.
func (c *conn) learnLogEnd(ctx context.Context) error {
	p, err := c.cfg.origin.events(ctx, c.token, 0, 1)
	if statusOf(err) == http.StatusGone {
		return nil
	}
	if err != nil {
		return err
	}
	s := &c.seq
	s.mu.Lock()
	s.last, s.known = p.LastSeq, true
	s.mu.Unlock()
	return nil
}

// prefetch reads a resume's first page of the origin's log, before the
// upgrade (the fetch after it starts there). 410 is left to that fetch,
// which answers it with resync.
func (c *conn) prefetch(ctx context.Context) error {
	p, err := c.cfg.origin.events(ctx, c.token, c.seq.last, eventsPageLimit)
	if statusOf(err) == http.StatusGone {
		return nil
	}
	if err != nil {
		return err
	}
	c.firstPage, c.firstSince = &p, c.seq.last
	return nil
}

// page returns the origin's events after since: the prefetched page the
// first time when it starts there, else a fetch. Only the fetch goroutine
// calls it.
func (c *conn) page(ctx context.Context, since int64) (eventsPage, error) {
	if p := c.firstPage; p != nil {
		c.firstPage = nil
		if c.firstSince == since {
			return *p, nil
		}
	}
	return c.cfg.origin.events(ctx, c.token, since, eventsPageLimit)
}

// fetchOnce sets the watermark of a live-only connection, and queues the
// origin's events after the watermark, waiting for the writer when the
// queue is half full.
func (c *conn) fetchOnce(ctx context.Context) error {
	s := &c.seq
	s.mu.Lock()
	known, since := s.known, s.last
	s.mu.Unlock()
	if !known {
		return c.learnLogEnd(ctx)
	}
	for {
		p, err := c.page(ctx, since)
		if err != nil {
			return err
		}
		for _, raw := range p.Events {
			if since, err = c.replay(ctx, since, raw); err != nil {
				return err
			}
		}
		if len(p.Events) == 0 || since >= p.LastSeq {
			return nil
		}
	}
}

// replay queues one event of the origin's log after since (the
// watermark), returning the new watermark.
func (c *conn) replay(ctx context.Context, since int64, raw []byte) (int64, error) {
	raw, err := compactJSON(raw)
	if err != nil {
		return since, fmt.Errorf("%w: %w", errBadLog, err)
	}
	ev, err := decodeEvent(raw)
	if err != nil {
		return since, fmt.Errorf("%w: %w", errBadLog, err)
	}
	switch {
	case ev.Seq <= since:
		return since, nil
	case ev.Seq != since+1:
		return since, errLogGap
	}
	// The watermark and the connection's conversations follow the event
	// before its frame is queued: the writer may send it at once, and a
	// fast client may ack it (checked against the watermark) or type in
	// the conversation it announced before pushWait returns. (A failed push
	// means the connection is ending, so the early update costs nothing.)
	c.seq.mu.Lock()
	c.seq.last = ev.Seq
	c.seq.mu.Unlock()
	c.peers.apply(ev)
	if err := c.q.pushWait(ctx, outFrame{data: appendEventFrame(nil, raw), kind: kindOutEvent, at: ev.At}); err != nil {
		return since, err
	}
	c.metrics.replayed.Inc()
	return ev.Seq, nil
}

// releaseHeld queues the held live events that follow the watermark and
// ends the fetch; it reports false when another fetch is needed (a gap
// remains, or one was asked for meanwhile).
func (c *conn) releaseHeld() bool {
	s := &c.seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known && len(s.held) > 0 {
		s.last, s.known = s.held[0].ev.Seq-1, true // unanchored: the first live event starts the connection
	}
	n := 0
	for ; n < len(s.held); n++ {
		le := s.held[n]
		if le.ev.Seq > s.last+1 {
			break
		}
		if le.ev.Seq == s.last+1 {
			c.queueEventLocked(le)
		}
	}
	rest := copy(s.held, s.held[n:])
	clear(s.held[rest:])
	s.held = s.held[:rest]
	if rest > 0 || s.again {
		s.again = false
		return false
	}
	s.held = nil
	s.fetching = false
	return true
}

// resync tells the client its events are gone beyond retention: it must
// refetch over REST and reconnect without since. The connection then
// closes normally.
func (c *conn) resync() {
	if c.q.pushWait(c.ctx, outFrame{data: resyncFrame, kind: kindOutResync}) == nil {
		c.requestClose(closeRequest{code: closeNormal, reason: resyncReason, send: true, flush: true})
	}
}

// peers is what the edge knows of a connection's conversations:
// conversation id -> the other user, for routing typing. It is loaded from
// the origin before the upgrade, then kept current by match and unmatch
// events.
type peers struct {
	mu     sync.Mutex
	byConv map[int64]int64
}

// load installs the origin's list.
func (p *peers) load(m map[int64]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byConv = m
}

// peer returns the other user of conversation conv.
func (p *peers) peer(conv int64) (peer int64, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	peer, known = p.byConv[conv]
	return peer, known
}

// apply updates the conversations from a match or unmatch event (events
// older than the origin's list replay history it already reflects;
// applying them in order ends in the same state).
func (p *peers) apply(ev event) {
	if ev.Kind != kindMatch && ev.Kind != kindUnmatch || ev.Data.ConversationID <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byConv == nil {
		p.byConv = make(map[int64]int64)
	}
	if ev.Kind == kindMatch {
		p.byConv[ev.Data.ConversationID] = ev.Data.PeerID
	} else {
		delete(p.byConv, ev.Data.ConversationID)
	}
}
