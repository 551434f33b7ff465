package testredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Action is what a Proxy does with one command.
type Action int

// Actions a Proxy rule can choose.
const (
	// Forward sends the command to Redis unchanged.
	Forward Action = iota
	// Fail makes Redis answer the command with an error reply: the proxy
	// renames it to a command Redis does not know. The connection stays up
	// and replies stay in order, so in a pipeline exactly this command
	// fails, and go-redis does not retry it (an ERR reply is final).
	Fail
	// Drop closes the client's connection instead of forwarding the
	// command, as a network failure would (go-redis retries that once on a
	// new connection: drop two in a row to fail the call).
	Drop
	// Swallow neither forwards the command nor closes the connection: the
	// client waits for a reply that never comes, as with a server that
	// stopped answering without a reset (a host gone, packets dropped).
	Swallow
)

// injectedCommand is the name a failed command is renamed to.
const injectedCommand = "SPARKTEST.INJECTED-FAILURE"

// Proxy is a TCP proxy in front of a Redis server whose rule decides, for
// each command a client sends, whether it reaches Redis. Tests use it to
// fail exactly the commands they choose. Replies and pub/sub messages pass
// through untouched. It is closed when the test ends.
type Proxy struct {
	t        testing.TB
	upstream string
	ln       net.Listener

	mu     sync.Mutex
	rule   func(args []string) Action
	conns  map[net.Conn]struct{}
	closed bool
	cut    bool // connections are refused until Restore

	failed atomic.Int64
	wg     sync.WaitGroup
}

// NewProxy starts a proxy on a free port of 127.0.0.1 forwarding to the
// Redis at upstream.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{t: t, upstream: upstream, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, for clients.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetRule makes rule decide each command from now on (args[0] is the command
// name as the client sent it). Nil forwards everything.
func (p *Proxy) SetRule(rule func(args []string) Action) {
	p.mu.Lock()
	p.rule = rule
	p.mu.Unlock()
}

// FailNext applies action to the next n commands match accepts, then
// forwards everything again; n < 0 applies it until the rule is replaced.
func (p *Proxy) FailNext(n int, action Action, match func(args []string) bool) {
	var left atomic.Int64
	left.Store(int64(n))
	p.SetRule(func(args []string) Action {
		if !match(args) {
			return Forward
		}
		if n < 0 || left.Add(-1) >= 0 {
			return action
		}
		return Forward
	})
}

// Failed returns how many commands the proxy failed or dropped.
func (p *Proxy) Failed() int { return int(p.failed.Load()) }

// Cut closes every connection through the proxy and refuses new ones
// until Restore, as a network partition between the clients and Redis
// would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// Restore lets connections through again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track adds conns to the open connections; once the proxy is closed, or
// while it is cut, it closes them instead and reports false.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	refuse := p.closed || p.cut
	for _, c := range conns {
		if refuse {
			_ = c.Close()
		} else {
			p.conns[c] = struct{}{}
		}
	}
	return !refuse
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	for _, c := range conns {
		delete(p.conns, c)
		_ = c.Close()
	}
	p.mu.Unlock()
}

// serve relays one client connection: commands one at a time through the
// rule, replies as they come.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(client, server)
		p.untrack(client, server)
	}()
	r := bufio.NewReader(client)
	for {
		raw, args, err := ReadCommand(r)
		if err != nil {
			return
		}
		p.mu.Lock()
		rule := p.rule
		p.mu.Unlock()
		action := Forward
		if rule != nil && len(args) > 0 {
			action = rule(args)
		}
		switch action {
		case Fail:
			p.failed.Add(1)
			raw = EncodeCommand(append([]string{injectedCommand}, args[1:]...))
		case Drop:
			p.failed.Add(1)
			return
		case Swallow:
			p.failed.Add(1)
			continue
		}
		if _, err := server.Write(raw); err != nil {
			return
		}
	}
}

// Limits of ReadCommand, far above anything a test sends.
const (
	maxArgs    = 1 << 20
	maxBulkLen = 64 << 20
	maxInline  = 64 << 10
)

// ReadCommand reads one client command in the Redis protocol (RESP): an
// array of bulk strings, or an inline command (a line of words). It returns
// the bytes read and the command's arguments.
func ReadCommand(r *bufio.Reader) (raw []byte, args []string, err error) {
	line, err := readLine(r)
	if err != nil {
		return nil, nil, err
	}
	raw = append(raw, line...)
	if line[0] != '*' {
		return raw, strings.Fields(string(line)), nil
	}
	n, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
	if err != nil || n < 0 || n > maxArgs {
		return nil, nil, fmt.Errorf("resp: bad array header %q", line)
	}
	args = make([]string, 0, min(n, 64))
	for i := 0; i < n; i++ {
		h, err := readLine(r)
		if err != nil {
			return nil, nil, err
		}
		if h[0] != '$' {
			return nil, nil, fmt.Errorf("resp: want a bulk string, got %q", h)
		}
		l, err := strconv.Atoi(string(bytes.TrimRight(h[1:], "\r\n")))
		if err != nil || l < 0 || l > maxBulkLen {
			return nil, nil, fmt.Errorf("resp: bad bulk length %q", h)
		}
		var b bytes.Buffer // grows with what arrives, not with what is claimed
		if _, err := io.CopyN(&b, r, int64(l)+2); err != nil {
			return nil, nil, fmt.Errorf("resp: bulk string: %w", unexpected(err))
		}
		if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
			return nil, nil, errors.New("resp: bulk string not ended by CRLF")
		}
		raw = append(append(raw, h...), b.Bytes()...)
		args = append(args, string(b.Bytes()[:l]))
	}
	return raw, args, nil
}

// readLine reads a non-empty line ending in CRLF, at most maxInline bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxInline {
			return nil, errors.New("resp: line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(line) > 0 {
				return nil, unexpected(err)
			}
			return nil, err
		}
		break
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("resp: bad line %q", line)
	}
	return line, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// EncodeCommand returns args as a RESP array of bulk strings.
func EncodeCommand(args []string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}
