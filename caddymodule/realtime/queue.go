package realtime

import (
	"context"
	"sync"
	"time"
)

// outFrame is one server frame waiting in a connection's queue.
type outFrame struct {
	// data is the frame's JSON (no newline). It may be shared with the
	// user's other connections: never written to.
	data []byte
	// kind is the frame type, for spark_websocket_frames_total.
	kind frameKind
	// at is an event frame's commit time at the origin (zero otherwise),
	// for spark_message_delivery_duration_seconds.
	at time.Time
}

// queue is a connection's bounded outbound queue: a FIFO of frames bounded
// in frames and bytes. Producers never block on it except a replay
// (pushWait), which waits while it is half full, so live frames keep room.
type queue struct {
	mu        sync.Mutex
	frames    []outFrame
	bytes     int
	maxFrames int
	maxBytes  int
	// pushed is called (without the lock, never blocking) after frames
	// arrived: it starts the connection's writer. Nil: nothing to call.
	pushed func()
	// drained is signalled when the writer took frames, for pushWait.
	drained chan struct{}
}

// newQueue makes a queue bounded by maxFrames and maxBytes that calls
// pushed (when not nil) after each push.
func newQueue(maxFrames, maxBytes int, pushed func()) *queue {
	return &queue{maxFrames: maxFrames, maxBytes: maxBytes, pushed: pushed, drained: make(chan struct{}, 1)}
}

// push appends f unless that would pass a bound; it reports whether it did.
func (q *queue) push(f outFrame) bool {
	q.mu.Lock()
	ok := q.fitsLocked(f, q.maxFrames, q.maxBytes)
	if ok {
		q.appendLocked(f)
	}
	q.mu.Unlock()
	if ok {
		q.notify()
	}
	return ok
}

// notify tells the writer frames arrived.
func (q *queue) notify() {
	if q.pushed != nil {
		q.pushed()
	}
}

// pushWait appends f once the queue is below half its bounds (a frame
// larger than that goes into an empty queue), waiting for the writer to
// drain it; it fails only when ctx ends.
func (q *queue) pushWait(ctx context.Context, f outFrame) error {
	for {
		q.mu.Lock()
		ok := q.fitsLocked(f, q.maxFrames/2, q.maxBytes/2) || len(q.frames) == 0
		if ok {
			q.appendLocked(f)
		}
		q.mu.Unlock()
		if ok {
			q.notify()
			return nil
		}
		select {
		case <-q.drained:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (q *queue) fitsLocked(f outFrame, maxFrames, maxBytes int) bool {
	return len(q.frames) < maxFrames && q.bytes+len(f.data) <= maxBytes
}

func (q *queue) appendLocked(f outFrame) {
	q.frames = append(q.frames, f)
	q.bytes += len(f.data)
}

// take moves queued frames to dst, oldest first, as many as fit in
// maxBytes of frames and separators (at least one), and returns dst.
func (q *queue) take(dst []outFrame, maxBytes int) []outFrame {
	q.mu.Lock()
	n, size := 0, 0
	for n < len(q.frames) {
		size += len(q.frames[n].data) + 1
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	dst = append(dst, q.frames[:n]...)
	for i := range n {
		q.bytes -= len(q.frames[i].data)
	}
	rest := copy(q.frames, q.frames[n:])
	clear(q.frames[rest:])
	q.frames = q.frames[:rest]
	if rest == 0 && cap(q.frames) > 64 {
		q.frames = nil // a burst's backing array is not kept by an idle connection
	}
	q.mu.Unlock()
	if n > 0 {
		signal(q.drained)
	}
	return dst
}

// len returns the number of queued frames.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

// signal sends on a capacity-1 channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
