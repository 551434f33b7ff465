package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// pairRounds bounds how many times pairs that could not be matched are
// replaced by the next user ids.
const pairRounds = 4

// pair makes Users/2 pairs with their conversation. Candidate pair k is
// users FirstUser+2k and FirstUser+2k+1; with PairingAPI a candidate that
// cannot be matched (one passed on the other before, say) is skipped and
// replaced by the next candidate, up to pairRounds rounds. It returns how
// many candidates were skipped.
func (r *runner) pair(ctx context.Context) (skipped int, err error) {
	want := r.cfg.Users / 2
	first := r.cfg.FirstUser
	if r.cfg.Pairing == PairingFixed {
		for k := 0; k < want; k++ {
			a, err := r.newUser(first + int64(2*k))
			if err != nil {
				return 0, err
			}
			b, err := r.newUser(first + int64(2*k+1))
			if err != nil {
				return 0, err
			}
			r.addPair(a, b, int64(k+1))
		}
		return 0, nil
	}
	type matched struct {
		a, b *user
		conv int64
	}
	var found []matched
	var lastErr error
	next := 0
	for round := 0; round < pairRounds && len(found) < want; round++ {
		n := want - len(found)
		res := make([]matched, n)
		errs := make([]error, n)
		parallel(ctx, n, 32, func(i int) {
			k := next + i
			a, err := r.newUser(first + int64(2*k))
			if err != nil {
				errs[i] = err
				return
			}
			b, err := r.newUser(first + int64(2*k+1))
			if err != nil {
				errs[i] = err
				return
			}
			conv, err := r.match(ctx, r.cfg.Edges[k%len(r.cfg.Edges)], a, b)
			res[i], errs[i] = matched{a, b, conv}, err
		})
		if err := ctx.Err(); err != nil {
			return skipped, fmt.Errorf("chat: pairing: %w", err)
		}
		next += n
		for i := range res {
			if errs[i] != nil {
				skipped++
				lastErr = errs[i]
				continue
			}
			found = append(found, res[i])
		}
	}
	if len(found) < want {
		return skipped, fmt.Errorf("chat: only %d of %d pairs could be matched after %d candidates; last: %w", len(found), want, next, lastErr)
	}
	for _, m := range found {
		r.addPair(m.a, m.b, m.conv)
	}
	return skipped, nil
}

// match makes a and b like each other and returns their conversation; an
// existing match (409 on the swipe) is looked up in a's matches.
func (r *runner) match(ctx context.Context, edge string, a, b *user) (int64, error) {
	var out struct {
		Match *struct {
			PeerID         int64 `json:"peer_id"`
			ConversationID int64 `json:"conversation_id"`
		} `json:"match"`
	}
	for _, s := range []struct{ from, to *user }{{a, b}, {b, a}} {
		status, body, err := r.call(ctx, http.MethodPost, edge+"/api/swipes", s.from.token, "",
			fmt.Appendf(nil, `{"target_id":%d,"direction":"like"}`, s.to.id))
		if err != nil {
			return 0, fmt.Errorf("swipe %d->%d: %w", s.from.id, s.to.id, err)
		}
		switch status {
		case http.StatusOK, http.StatusCreated:
			if err := json.Unmarshal(body, &out); err != nil {
				return 0, fmt.Errorf("swipe %d->%d: decode: %w", s.from.id, s.to.id, err)
			}
			if out.Match != nil && out.Match.ConversationID > 0 {
				return out.Match.ConversationID, nil
			}
		case http.StatusConflict: // swiped before: look the match up below
		default:
			return 0, fmt.Errorf("swipe %d->%d: status %d: %.200s", s.from.id, s.to.id, status, body)
		}
	}
	status, body, err := r.call(ctx, http.MethodGet, edge+"/api/matches", a.token, "", nil)
	if err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("matches of %d: status %d: %v", a.id, status, err)
	}
	var ms struct {
		Matches []struct {
			PeerID         int64 `json:"peer_id"`
			ConversationID int64 `json:"conversation_id"`
		} `json:"matches"`
	}
	if err := json.Unmarshal(body, &ms); err != nil {
		return 0, fmt.Errorf("matches of %d: decode: %w", a.id, err)
	}
	for _, m := range ms.Matches {
		if m.PeerID == b.id && m.ConversationID > 0 {
			return m.ConversationID, nil
		}
	}
	return 0, fmt.Errorf("users %d and %d could not be matched (one passed on the other before?)", a.id, b.id)
}

// call makes one REST call and returns its status and body. readAfter,
// when set, goes as Spark-Read-After.
func (r *runner) call(ctx context.Context, method, url, token, readAfter string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if readAfter != "" {
		req.Header.Set(contract.ReadAfter, readAfter)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, b, err
}

// traffic runs messages, typing, REST calls and drops for Duration.
func (r *runner) traffic(ctx context.Context) {
	users := r.users
	end := r.start.Add(r.cfg.Duration)
	done := make(chan struct{})
	var n int
	run := func(f func()) {
		n++
		go func() { f(); done <- struct{}{} }()
	}
	run(func() {
		every(ctx, r.start, end, r.cfg.MessageRate, 1, func(_ int64, _ time.Time, rng *rand.Rand) {
			r.sendMessage(users[rng.IntN(len(users))])
		})
	})
	run(func() {
		every(ctx, r.start, end, r.cfg.TypingRate, 2, func(_ int64, _ time.Time, rng *rand.Rand) {
			r.sendTyping(users[rng.IntN(len(users))])
		})
	})
	run(func() {
		every(ctx, r.start, end, r.cfg.RESTRate, 3, func(i int64, due time.Time, rng *rand.Rand) {
			go r.rest(ctx, users[rng.IntN(len(users))], i, due)
		})
	})
	run(func() { r.dropSome(ctx, users) })
	for ; n > 0; n-- {
		<-done
	}
}

// every calls f at rate per second, evenly spaced from start until end
// (late calls catch up at once: the schedule does not slip).
func every(ctx context.Context, start, end time.Time, rate float64, seed uint64, f func(i int64, due time.Time, rng *rand.Rand)) {
	if rate <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(seed, uint64(start.UnixNano())))
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if !due.Before(end) {
			return
		}
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		f(i, due, rng)
	}
}

func (r *runner) sendMessage(u *user) {
	id := fmt.Sprintf("%s-%d-%d", r.cfg.RunID, u.id, u.n.Add(1))
	r.ledger.Sent(id, u.id, u.peerID, time.Now(), u.drops.Load())
	r.sent.Add(1)
	if c := u.current(); c != nil {
		_ = c.Send(u.conv, body(id), id) // a failed write is sent again after the resume or in the drain
	}
}

func (r *runner) sendTyping(u *user) {
	c := u.current()
	if c == nil {
		return
	}
	u.typingAt.Store(int64(time.Since(r.start)))
	if c.Typing(u.conv) == nil {
		r.typingSent.Add(1)
	}
}

// restCalls are the app's REST calls while chatting, in turn.
var restCalls = []struct{ name, path string }{
	{"conversations", "/api/conversations"},
	{"messages", "/api/conversations/%d/messages?limit=20"},
	{"matches", "/api/matches"},
}

func (r *runner) rest(ctx context.Context, u *user, i int64, due time.Time) {
	rc := restCalls[int(i)%len(restCalls)]
	path := rc.path
	if rc.name == "messages" {
		path = fmt.Sprintf(path, u.conv)
	}
	u.mu.Lock()
	edge, readAfter := r.cfg.Edges[u.edge], u.readAfter
	u.mu.Unlock()
	status, body, err := r.call(ctx, http.MethodGet, edge+path, u.token, readAfter, nil)
	s := loadtest.Sample{Endpoint: rc.name, Method: http.MethodGet, Intended: due, Latency: time.Since(due), Status: status, BytesIn: int64(len(body))}
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		s.ErrKind = loadtest.ErrKindConnection
	case status >= 500:
		s.ErrKind = loadtest.ErrKind5xx
	case status >= 400:
		s.ErrKind = loadtest.ErrKind4xx
	}
	r.rests.Add(1)
	r.rec.Record(int(u.id), s)
}

// dropSome drops DropShare of the users' connections, evenly between a
// quarter and three quarters of the run.
func (r *runner) dropSome(ctx context.Context, users []*user) {
	n := int(math.Round(r.cfg.DropShare * float64(len(users))))
	if n == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(4, uint64(r.start.UnixNano())))
	order := rng.Perm(len(users))[:n]
	from, span := r.start.Add(r.cfg.Duration/4), r.cfg.Duration/2
	for k, i := range order {
		due := from.Add(time.Duration(float64(span) * float64(k) / float64(n)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		go r.drop(users[i])
	}
}

// drain waits for every message to reach its recipient. A message still
// neither confirmed nor received long after its last send (twice the
// timeout: the edge gives up on the origin sooner) is sent again, once per
// such period; a drop's resume and an error frame resend sooner.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	next := time.Now().Add(time.Second)
	for r.ledger.Outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if time.Now().After(next) {
			cutoff := time.Now().Add(-2 * r.cfg.Timeout)
			for _, u := range r.users {
				r.resendUnconfirmed(u, cutoff)
			}
			next = time.Now().Add(time.Second)
		}
	}
}

// progress calls Progress every second until stopped.
func (r *runner) progress(ctx context.Context) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-t.C:
				el := time.Since(r.start)
				r.cfg.Progress(Progress{Elapsed: el, Connected: r.connected.Load(), Sent: r.sent.Load(), Received: r.received.Load(),
					Typing: r.typingRecv.Load(), REST: r.rests.Load(), Outstanding: r.ledger.Outstanding(), Draining: el > r.cfg.Duration})
			}
		}
	}()
	return func() { close(quit); <-fin }
}

// closeAll ends every connection with a close frame and waits for the
// readers (a resume that dials later closes its connection itself).
func (r *runner) closeAll() {
	r.openMu.Lock()
	r.stop.Store(true)
	open := make([]*sparkv1.Conn, 0, len(r.open))
	for c := range r.open {
		open = append(open, c)
	}
	r.openMu.Unlock()
	for _, u := range r.users {
		u.mu.Lock()
		u.conn = nil
		u.mu.Unlock()
	}
	for _, c := range open {
		_ = c.Close()
	}
	r.wg.Wait()
}

// report gathers the figures.
func (r *runner) report(skipped int, drained time.Duration) *loadtest.ChatReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cfg
	return &loadtest.ChatReport{
		Edges: c.Edges, Connections: len(r.users), PairsSkipped: skipped,
		MessageRate: c.MessageRate, TypingRate: c.TypingRate, RESTRate: c.RESTRate, DropShare: c.DropShare, DrainS: drained.Seconds(),
		Messages: r.ledger.Tally(func(id int64) bool {
			u := r.byID[id]
			return u == nil || u.current() == nil
		}),
		Delivery: loadtest.LatencyOf(r.delivery), DeliveryLive: loadtest.LatencyOf(r.deliveryOK), DeliveryPercentiles: loadtest.Spectrum(r.delivery),
		Stored: loadtest.LatencyOf(r.stored),
		Typing: loadtest.TypingCounts{Sent: r.typingSent.Load(), Received: r.typingRecv.Load(), Misdelivered: r.typingMisdelivered.Load(),
			Latency: loadtest.LatencyOf(r.typing), Percentiles: loadtest.Spectrum(r.typing)},
		Dials: r.dials.Load(), DialErrors: r.dialErrors.Load(), Drops: r.drops.Load(), Resumes: r.resumes.Load(),
		ServerCloses: r.closes, ErrorFrames: r.errorFrames, ReplayedSeqs: r.replayed.Load(), Resyncs: r.resyncs.Load(), ForeignEvents: r.foreign.Load(),
	}
}
