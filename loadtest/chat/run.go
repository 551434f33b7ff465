package chat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// Result is what a chat run measured.
type Result struct {
	// Config is what was run (defaults filled in).
	Config Config
	// Start and End bound the traffic phase and the drain.
	Start, End time.Time
	// Chat is the delivery figures and the ledger's tally.
	Chat *loadtest.ChatReport
	// REST holds the REST calls' samples.
	REST *loadtest.Stats
}

// Report turns a result into the load test's report (JSON, text, HTML).
func (r *Result) Report(t loadtest.ChatTargets) *loadtest.Report {
	c := r.Config
	res := &loadtest.Result{
		Config: loadtest.Config{Target: strings.Join(c.Edges, " "), Mode: loadtest.ModeOpen, Rate: c.RESTRate, Duration: c.Duration,
			Scenario: &loadtest.Scenario{Name: "chat", Description: "matched pairs on spark.v1 WebSockets: messages, typing, the app's REST calls; drops resumed on another edge"}},
		Users: c.Users, Start: r.Start, End: r.End, Stats: r.REST,
	}
	return loadtest.NewChatReport(res, r.Chat, t)
}

// user is one WebSocket user.
type user struct {
	id, peerID int64
	peer       *user
	conv       int64
	token      string
	drops      *atomic.Int64 // the pair's: bumped when either side is dropped and when it resumed

	mu   sync.Mutex
	conn *sparkv1.Conn // nil while (re)connecting
	done chan struct{} // closed when conn's reader has ended
	edge int
	// readAfter is the read_after of the user's last sent frame: its REST
	// reads send it as Spark-Read-After, as the app does, so any origin
	// shows the user's own messages.
	readAfter string

	lastSeq  atomic.Int64 // last event seq processed (the reader's; read after it ended)
	n        atomic.Int64 // messages sent
	typingAt atomic.Int64 // when the last typing indicator was sent, ns since the start
}

// current returns the open connection, nil while reconnecting.
func (u *user) current() *sparkv1.Conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conn
}

// runner is one Run's state.
type runner struct {
	cfg    Config
	ledger *Ledger
	users  []*user
	byID   map[int64]*user
	http   *http.Client
	dialer *websocket.Dialer
	rec    *loadtest.Recorder
	start  time.Time
	stop   atomic.Bool // the run is over: readers exit quietly
	wg     sync.WaitGroup

	openMu sync.Mutex // guards open and the stop transition
	open   map[*sparkv1.Conn]struct{}

	mu          sync.Mutex // guards the histograms and maps below
	delivery    *hdrhistogram.Histogram
	deliveryOK  *hdrhistogram.Histogram // not waiting for a resume
	stored      *hdrhistogram.Histogram
	typing      *hdrhistogram.Histogram
	closes      map[string]int64
	errorFrames map[string]int64

	connected, dials, dialErrors, drops, resumes      atomic.Int64
	typingSent, typingRecv, typingMisdelivered        atomic.Int64
	replayed, resyncs, foreign, received, sent, rests atomic.Int64
}

// Run runs the chat scenario: pairs, connections, traffic, drain.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, ledger: NewLedger(), open: map[*sparkv1.Conn]struct{}{}, byID: map[int64]*user{},
		delivery: loadtest.NewHistogram(), deliveryOK: loadtest.NewHistogram(), stored: loadtest.NewHistogram(), typing: loadtest.NewHistogram(),
		closes: map[string]int64{}, errorFrames: map[string]int64{},
		dialer: &websocket.Dialer{HandshakeTimeout: cfg.Timeout, ReadBufferSize: 2048, WriteBufferSize: 2048,
			NetDialContext: (&net.Dialer{Timeout: cfg.Timeout}).DialContext},
		http: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}},
	}
	defer r.http.CloseIdleConnections()
	skipped, err := r.pair(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.connectAll(ctx); err != nil {
		r.closeAll()
		return nil, err
	}
	if cfg.OnReady != nil {
		cfg.OnReady(int(r.connected.Load()))
	}
	r.start = time.Now()
	r.rec = loadtest.NewRecorder(r.start, 8)
	stopProgress := r.progress(ctx)
	r.traffic(ctx)
	drainStart := time.Now()
	r.drain(ctx)
	drained := time.Since(drainStart)
	stopProgress()
	end := time.Now()
	chat := r.report(skipped, drained) // before closing: who is still connected matters
	r.closeAll()
	return &Result{Config: cfg, Start: r.start, End: end, Chat: chat, REST: r.rec.Snapshot()}, ctx.Err()
}

// newUser returns user id with a token for the run.
func (r *runner) newUser(id int64) (*user, error) {
	c := r.cfg
	tok, err := loadtest.MintToken(c.JWTSecret, id, c.Duration+c.Drain+time.Hour, time.Now())
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return &user{id: id, token: tok}, nil
}

// addPair adds a and b, in conversation conv, to the run: the i-th user
// connects to edge i mod len(Edges), so a pair's users are on different
// edges when there are two or more.
func (r *runner) addPair(a, b *user, conv int64) {
	d := new(atomic.Int64)
	a.peer, b.peer, a.peerID, b.peerID, a.drops, b.drops, a.conv, b.conv = b, a, b.id, a.id, d, d, conv, conv
	for _, u := range []*user{a, b} {
		u.edge = len(r.users) % len(r.cfg.Edges)
		r.users = append(r.users, u)
		r.byID[u.id] = u
	}
}

// parallel runs f(0..n-1) on at most p goroutines.
func parallel(ctx context.Context, n, p int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < p && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// connectAll opens every user's first connection (since=0: the ledger
// ignores events from before the run).
func (r *runner) connectAll(ctx context.Context) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	parallel(ctx, len(r.users), r.cfg.DialParallel, func(i int) {
		u := r.users[i]
		if err := r.connect(ctx, u, u.edge, 0, 10); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	})
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("chat: connect: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("chat: %d users could not connect, first: %v", n, firstErr.Load())
	}
	return nil
}

// connect dials u on edge with since, trying attempts times, and starts
// its reader.
func (r *runner) connect(ctx context.Context, u *user, edge int, since int64, attempts int) error {
	var err error
	for a := 0; a < attempts; a++ {
		if a > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(a) * 250 * time.Millisecond):
			}
		}
		r.dials.Add(1)
		var c *sparkv1.Conn
		c, err = sparkv1.Dial(ctx, sparkv1.Options{Edge: r.cfg.Edges[edge], Token: u.token, Since: since, HasSince: true, Dialer: r.dialer})
		if err != nil {
			r.dialErrors.Add(1)
			continue
		}
		// Registered under openMu so that closeAll closes it, however late
		// a resume's dial ends.
		r.openMu.Lock()
		if r.stop.Load() {
			r.openMu.Unlock()
			_ = c.Close()
			return errors.New("the run is over")
		}
		r.open[c] = struct{}{}
		r.openMu.Unlock()
		done := make(chan struct{})
		u.mu.Lock()
		u.conn, u.done, u.edge = c, done, edge
		u.mu.Unlock()
		r.connected.Add(1)
		r.wg.Add(1)
		go r.read(u, c, done)
		return nil
	}
	return fmt.Errorf("user %d on %s: %w", u.id, r.cfg.Edges[edge], err)
}

// read processes c's frames until it ends. A connection the server ended
// is resumed on the next edge, after a second, like an app would.
func (r *runner) read(u *user, c *sparkv1.Conn, done chan struct{}) {
	defer r.wg.Done()
	resumeOn := -1
	defer func() {
		r.openMu.Lock()
		delete(r.open, c)
		r.openMu.Unlock()
		close(done)
		if resumeOn >= 0 {
			time.Sleep(time.Second)
			r.resume(u, resumeOn)
		}
	}()
	last, acked := u.lastSeq.Load(), u.lastSeq.Load()
	for {
		frames, err := c.ReadFrames()
		if err != nil && !errors.Is(err, sparkv1.ErrBadFrame) {
			u.lastSeq.Store(last)
			r.connected.Add(-1)
			u.mu.Lock()
			mine := u.conn == c // not dropped on purpose, not the end of the run
			if mine {
				u.conn = nil
			}
			u.mu.Unlock()
			if !mine || r.stop.Load() {
				return
			}
			r.countClose(sparkv1.CloseCode(err))
			_ = c.Abort()
			if code := sparkv1.CloseCode(err); code == 4001 || code == 4003 {
				return // the token is refused: resuming cannot help
			}
			resumeOn = (u.edge + 1) % len(r.cfg.Edges)
			return
		}
		if err != nil {
			r.countErrorFrame("undecodable")
		}
		now := time.Now()
		for i := range frames {
			f := &frames[i]
			if r.cfg.Discard != nil && r.cfg.Discard(u.id, f) {
				continue
			}
			switch f.Type {
			case sparkv1.TypeEvent:
				if f.Event.Seq <= last {
					r.replayed.Add(1)
				} else {
					last = f.Event.Seq
				}
				r.onEvent(u, f.Event, now)
			case sparkv1.TypeSent:
				if d, ok := r.ledger.Stored(f.ClientMsgID, now); ok {
					r.record(r.stored, d)
				}
				if f.ReadAfter != "" {
					u.mu.Lock()
					u.readAfter = f.ReadAfter // one conversation, sends in order: the latest is the furthest
					u.mu.Unlock()
				}
			case sparkv1.TypeTyping:
				r.onTyping(u, f, now)
			case sparkv1.TypeError:
				r.countErrorFrame(f.Code)
				r.retryAfterError(u, f)
			case sparkv1.TypeResync:
				r.resyncs.Add(1)
			}
		}
		if last > acked {
			if c.Ack(last) == nil {
				acked = last
			}
		}
		u.lastSeq.Store(last)
	}
}

func (r *runner) onEvent(u *user, e *sparkv1.Event, now time.Time) {
	if e.Kind != sparkv1.KindMessage {
		return
	}
	m, err := e.MessageData()
	if err != nil {
		r.countErrorFrame("bad_message_event")
		return
	}
	if !strings.HasPrefix(m.ClientMsgID, r.cfg.RunID+"-") {
		r.foreign.Add(1)
		return
	}
	if m.SenderID == u.id {
		return // the sender's own copy (its other devices would show it)
	}
	d := r.ledger.Received(m.ClientMsgID, u.id, now, u.drops.Load())
	if !d.Known || !d.First || d.Misdelivered {
		return
	}
	r.received.Add(1)
	r.mu.Lock()
	_ = r.delivery.RecordValue(micros(d.Latency))
	if !d.AfterDrop {
		_ = r.deliveryOK.RecordValue(micros(d.Latency))
	}
	r.mu.Unlock()
}

func (r *runner) onTyping(u *user, f *sparkv1.Frame, now time.Time) {
	if f.UserID != u.peerID || f.ConversationID != u.conv {
		r.typingMisdelivered.Add(1)
		return
	}
	r.typingRecv.Add(1)
	at := u.peer.typingAt.Load()
	r.record(r.typing, now.Sub(r.start)-time.Duration(at))
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	return us
}

func (r *runner) record(h *hdrhistogram.Histogram, d time.Duration) {
	r.mu.Lock()
	_ = h.RecordValue(micros(d))
	r.mu.Unlock()
}

func (r *runner) countClose(code int) {
	r.mu.Lock()
	r.closes[strconv.Itoa(code)]++
	r.mu.Unlock()
}

func (r *runner) countErrorFrame(code string) {
	r.mu.Lock()
	r.errorFrames[code]++
	r.mu.Unlock()
}

// retryAfterError sends a message again a second after the edge answered
// it with an error that says "try again" (origin unavailable, rate
// limited), as an app would.
func (r *runner) retryAfterError(u *user, f *sparkv1.Frame) {
	if !strings.HasPrefix(f.Ref, r.cfg.RunID+"-") || (f.Code != "origin_unavailable" && f.Code != "rate_limited") {
		return
	}
	id := f.Ref
	time.AfterFunc(time.Second, func() {
		if r.stop.Load() || !r.ledger.Pending(u.id, id) {
			return
		}
		if c := u.current(); c != nil {
			r.ledger.Sent(id, u.id, u.peerID, time.Now(), 0)
			_ = c.Send(u.conv, body(id), id)
		}
	})
}

// resume reconnects u on edge with since=<last processed seq> and sends its
// unconfirmed messages again.
func (r *runner) resume(u *user, edge int) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Drain+r.cfg.Duration)
	defer cancel()
	if r.stop.Load() {
		return
	}
	if err := r.connect(ctx, u, edge, u.lastSeq.Load(), 20); err != nil {
		return // counted in dialErrors; its messages stay outstanding
	}
	u.drops.Add(1)
	r.resumes.Add(1)
	r.resendUnconfirmed(u, time.Now())
}

// resendUnconfirmed sends u's messages sent before cutoff and neither
// confirmed nor received again, with their ids.
func (r *runner) resendUnconfirmed(u *user, cutoff time.Time) {
	c := u.current()
	if c == nil {
		return
	}
	for _, id := range r.ledger.Unconfirmed(u.id, cutoff) {
		r.ledger.Sent(id, u.id, u.peerID, time.Now(), 0)
		if c.Send(u.conv, body(id), id) != nil {
			return
		}
	}
}

func body(id string) string { return "chat load test " + id }

// drop ends u's connection without a close frame and resumes on the next
// edge with since=<last processed seq>.
func (r *runner) drop(u *user) {
	u.mu.Lock()
	c, done := u.conn, u.done
	u.conn = nil
	u.mu.Unlock()
	if c == nil {
		return // already reconnecting
	}
	u.drops.Add(1)
	r.drops.Add(1)
	_ = c.Abort()
	<-done // the reader stored its last seq
	r.resume(u, (u.edge+1)%len(r.cfg.Edges))
}
