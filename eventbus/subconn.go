package eventbus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// subConn is one subscriber connection to one Redis node. It carries the
// (S)SUBSCRIBE commands for the users routed to that node, and its reader
// goroutine hands their messages to the handler in arrival order: a user's
// channel lives on one node, so that is publish order per user.
type subConn struct {
	addr    string
	sharded bool // SSUBSCRIBE (a Cluster) rather than SUBSCRIBE
	nc      net.Conn
	names   naming
	handler Handler

	wmu          sync.Mutex // the writer, and the order of commands on the wire
	bw           *bufio.Writer
	writeTimeout time.Duration

	pmu       sync.Mutex
	pings     map[uint64]chan struct{} // barriers awaiting their PONG
	nextPing  uint64
	unsubbing map[string]int // sharded: channels left on request, not yet confirmed

	done chan struct{} // closed when the connection has ended
	err  error         // why it ended; set before done is closed
}

// Commands per SUBSCRIBE: a batch of channels in one command. SSUBSCRIBE
// takes one channel per command (its channels must share a hash slot);
// those are pipelined instead.
const channelsPerCommand = 1000

// errSlotMoved ends a sharded connection whose node dropped a channel the
// subscriber still wants: its slot moved to another node.
var errSlotMoved = errors.New("eventbus: redis moved a subscribed channel's slot to another node")

// dialSub connects to addr and authenticates; start begins reading.
func dialSub(ctx context.Context, addr string, o *RedisOptions, names naming, sharded bool, h Handler) (*subConn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: o.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("eventbus: dial redis %s: %w", addr, err)
	}
	c := &subConn{
		addr: addr, sharded: sharded, nc: nc, names: names, handler: h,
		bw: bufio.NewWriterSize(nc, 16<<10), writeTimeout: o.WriteTimeout,
		pings: make(map[uint64]chan struct{}), unsubbing: make(map[string]int),
		done: make(chan struct{}),
	}
	// The node answers a PING within ReadTimeout, and is pinged every
	// PingInterval: silence longer than both is a dead connection.
	br := bufio.NewReaderSize(deadlineReader{nc, o.PingInterval + o.ReadTimeout}, 64<<10)
	if o.Password != "" {
		if err := c.auth(br, o.Username, o.Password); err != nil {
			_ = nc.Close()
			return nil, nil, err
		}
	}
	return c, br, nil
}

// auth sends AUTH and reads its answer.
func (c *subConn) auth(br *bufio.Reader, user, password string) error {
	w := respWriter{c.bw}
	if user != "" {
		w.command("AUTH", user, password)
	} else {
		w.command("AUTH", password)
	}
	if err := c.flush(); err != nil {
		return err
	}
	l, err := respReader{br}.line()
	if err != nil {
		return fmt.Errorf("eventbus: redis %s: auth: %w", c.addr, err)
	}
	if l[0] != '+' {
		return fmt.Errorf("eventbus: redis %s: auth: %s", c.addr, l)
	}
	return nil
}

// start runs the reader until the connection ends, then calls ended.
func (c *subConn) start(br *bufio.Reader, wg *sync.WaitGroup, ended func(*subConn)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.err = c.read(respReader{br})
		_ = c.nc.Close()
		close(c.done)
		ended(c)
	}()
}

// close ends the connection; the reader then stops.
func (c *subConn) close() { _ = c.nc.Close() }

// change writes (S)SUBSCRIBE or (S)UNSUBSCRIBE commands for channels,
// then a PING whose answer is the returned barrier: Redis runs a
// connection's commands in order, so when the PONG arrives every change is
// in effect, and every message published before it on those channels has
// been handed to the handler.
func (c *subConn) change(subscribe bool, channels []string) (<-chan struct{}, error) {
	cmd := "SUBSCRIBE"
	if !subscribe {
		cmd = "UNSUBSCRIBE"
	}
	per := channelsPerCommand
	if c.sharded {
		cmd, per = "S"+cmd, 1
		if !subscribe {
			c.pmu.Lock()
			for _, ch := range channels {
				c.unsubbing[ch]++
			}
			c.pmu.Unlock()
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := respWriter{c.bw}
	for len(channels) > 0 {
		n := min(per, len(channels))
		w.command(cmd, channels[:n]...)
		channels = channels[n:]
	}
	return c.barrierLocked()
}

// barrierLocked writes a PING with a fresh id and flushes; c.wmu is held.
func (c *subConn) barrierLocked() (<-chan struct{}, error) {
	ch := make(chan struct{})
	c.pmu.Lock()
	c.nextPing++
	id := c.nextPing
	c.pings[id] = ch
	c.pmu.Unlock()
	respWriter{c.bw}.command("PING", strconv.FormatUint(id, 10))
	return ch, c.flushLocked()
}

// wait waits for a barrier.
func (c *subConn) wait(ctx context.Context, barrier <-chan struct{}) error {
	select {
	case <-barrier:
		return nil
	case <-c.done:
		return fmt.Errorf("eventbus: redis %s: connection lost: %w", c.addr, c.err)
	case <-ctx.Done():
		return fmt.Errorf("eventbus: redis %s: waiting for the subscription: %w", c.addr, ctx.Err())
	}
}

// ping is the health check: a PING the node must answer within the read
// deadline.
func (c *subConn) ping() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	respWriter{c.bw}.command("PING")
	if c.flushLocked() != nil {
		c.close()
	}
}

func (c *subConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *subConn) flushLocked() error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err := c.bw.Flush(); err != nil {
		c.close()
		return fmt.Errorf("eventbus: redis %s: write: %w", c.addr, err)
	}
	return nil
}

// read handles replies until the connection fails.
func (c *subConn) read(r respReader) error {
	for {
		n, l, err := r.arrayLen()
		if err != nil {
			return err
		}
		if n < 0 {
			switch l[0] {
			case '-':
				return fmt.Errorf("eventbus: redis %s: %s", c.addr, l[1:])
			case '$': // PING's answer on a connection with no subscriptions
				err = r.bulk(l, c.pong)
			}
			if err != nil {
				return err
			}
			continue
		}
		if n == 0 {
			continue
		}
		var kind [16]byte
		var kl int
		if err := r.bulk(nil, func(b []byte, _ bool) error { kl = copy(kind[:], b); return nil }); err != nil {
			return err
		}
		rest := n - 1
		switch {
		case rest == 2 && (string(kind[:kl]) == "message" || string(kind[:kl]) == "smessage"):
			err, rest = c.message(r), 0
		case rest == 1 && string(kind[:kl]) == "pong":
			err, rest = r.bulk(nil, c.pong), 0
		case rest == 2 && string(kind[:kl]) == "sunsubscribe":
			err, rest = r.bulk(nil, c.left), 1
		}
		for ; rest > 0 && err == nil; rest-- {
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

// message reads a message's channel and envelope and hands it over.
func (c *subConn) message(r respReader) error {
	var user int64
	var ours bool
	if err := r.bulk(nil, func(ch []byte, _ bool) error { user, ours = c.names.userOf(ch); return nil }); err != nil {
		return err
	}
	return r.bulk(nil, func(b []byte, owned bool) error {
		if !ours {
			return nil
		}
		seq, p, err := decodeEnvelope(b)
		if err != nil {
			return nil // not ours after all: someone else's message on the channel
		}
		if !owned {
			p = bytes.Clone(p) // the handler may keep it
		}
		c.handler(Message{UserID: user, Seq: seq, Payload: p})
		return nil
	})
}

// pong releases the barrier whose id a PONG carries.
func (c *subConn) pong(b []byte, _ bool) error {
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return nil // a health check's PONG
	}
	c.pmu.Lock()
	ch := c.pings[id]
	delete(c.pings, id)
	c.pmu.Unlock()
	if ch != nil {
		close(ch)
	}
	return nil
}

// left handles a sunsubscribe: the answer to ours, or the node dropping a
// channel whose slot moved away.
func (c *subConn) left(ch []byte, _ bool) error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	n := c.unsubbing[string(ch)]
	switch {
	case n == 0:
		return errSlotMoved
	case n == 1:
		delete(c.unsubbing, string(ch))
	default:
		c.unsubbing[string(ch)] = n - 1
	}
	return nil
}

// deadlineReader sets a read deadline before every read of the socket.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	_ = d.c.SetReadDeadline(time.Now().Add(d.timeout))
	return d.c.Read(p)
}
