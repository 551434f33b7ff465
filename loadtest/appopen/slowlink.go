package appopen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Link is a simulated mobile link: every byte arrives RTT/2 after it was
// sent, and each direction carries at most Mbps megabits per second.
type Link struct {
	RTT  time.Duration
	Mbps float64
}

// ThreeG is the plan's 3G link: 150 ms round trip, 1.6 Mbit/s.
var ThreeG = Link{RTT: 150 * time.Millisecond, Mbps: 1.6}

// String describes the link.
func (l Link) String() string { return fmt.Sprintf("%v RTT, %.1f Mbit/s", l.RTT, l.Mbps) }

// Proxy is a TCP proxy on loopback that makes its connections behave like
// Link: the simulated phone connects to Addr, the proxy to the target.
type Proxy struct {
	link   Link
	target string
	ln     net.Listener

	up, down atomic.Int64 // bytes client→target, target→client
	conns    atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards every connection
// to target (host:port) through link.
func NewProxy(link Link, target string) (*Proxy, error) {
	if link.RTT < 0 || link.Mbps <= 0 {
		return nil, fmt.Errorf("slow link: RTT ≥ 0 and a positive bandwidth required, got %v", link)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slow link: listen: %w", err)
	}
	p := &Proxy{link: link, target: target, ln: ln, open: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the simulated phone connects to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Bytes returns the bytes carried so far, each direction.
func (p *Proxy) Bytes() (up, down int64) { return p.up.Load(), p.down.Load() }

// Conns returns the connections accepted so far.
func (p *Proxy) Conns() int64 { return p.conns.Load() }

// Close stops accepting, closes every connection and waits for them.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve carries one connection: the connection's set-up costs a round
// trip, as TCP's handshake over the link would.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.Sleep(p.link.RTT)
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, &p.up); done <- struct{}{} }()
	go func() { p.pipe(client, server, &p.down); done <- struct{}{} }()
	<-done // one side ended: end both
}

// chunk is data read from one side, due at the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst through the link: each chunk is delivered one
// way's latency after it was read, and no sooner than the bandwidth allows
// after the previous one.
func (p *Proxy) pipe(dst, src net.Conn, count *atomic.Int64) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	chunks := make(chan chunk, 256)
	go func() {
		defer close(chunks)
		buf := make([]byte, 16<<10)
		var free time.Time // when the link is next free to send
		for {
			n, err := src.Read(buf)
			if n > 0 {
				now := time.Now()
				start := now
				if free.After(start) {
					start = free
				}
				free = start.Add(time.Duration(float64(n*8) / (p.link.Mbps * 1e6) * float64(time.Second)))
				chunks <- chunk{data: append([]byte(nil), buf[:n]...), due: free.Add(p.link.RTT / 2)}
				count.Add(int64(n))
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			go func() { // let the reader end
				for range chunks {
				}
			}()
			return
		}
	}
}
