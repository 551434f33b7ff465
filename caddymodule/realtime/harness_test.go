package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/authtoken"
)

// This file is the tests' harness: an in-process bus (a unit-test double
// of the eventbus interfaces, registered as the event source "memtest"), a
// stand-in for the origin's API (events, conversations, sends, reads), an
// edge loaded from a Caddyfile, and a gorilla client.

const (
	// testSecret verifies the tests' tokens ({env.SPARK_RT_TEST_SECRET}).
	testSecret = "spark-realtime-test-secret-0123456789abcdef"
	// testSecret2 is a second key, kid "k2" (rotation tests); the fake
	// origin accepts it too.
	testSecret2 = "spark-realtime-second-secret-0123456789abcdef"
	secretEnv   = "SPARK_RT_TEST_SECRET"
)

func init() {
	caddy.RegisterModule(memSource{})
}

// brokers are the in-process buses by name (tests only).
var (
	brokersMu sync.Mutex
	brokers   = map[string]*broker{}
)

// brokerFor returns the named in-process bus, making it once.
func brokerFor(name string) *broker {
	brokersMu.Lock()
	defer brokersMu.Unlock()
	b := brokers[name]
	if b == nil {
		b = &broker{}
		brokers[name] = b
		brokers[name].subs = map[*memBus]bool{}
	}
	return b
}

// broker is an in-process bus: publishes reach every memBus subscribed to
// the user, synchronously, in publish order.
type broker struct {
	mu   sync.Mutex
	subs map[*memBus]bool
	down bool // publishes are lost (a transport cut)
	// subscribeErr fails Subscribe (the users stay wanted, as the
	// eventbus contract says).
	subscribeErr error
}

func (b *broker) Publish(_ context.Context, msgs ...eventbus.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return nil
	}
	for _, m := range msgs {
		for s := range b.subs {
			if s.wants(m.UserID) {
				s.handler(m)
			}
		}
	}
	return nil
}

// setDown cuts (true) or restores (false) the bus; restoring signals
// Reconnected to every subscriber.
func (b *broker) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	subs := make([]*memBus, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	if !down {
		for _, s := range subs {
			signal(s.reconnected)
		}
	}
}

// subscribed returns how many buses want user.
func (b *broker) subscribed(user int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for s := range b.subs {
		if s.wants(user) {
			n++
		}
	}
	return n
}

// memBus is one edge's handle on a broker.
type memBus struct {
	b           *broker
	handler     eventbus.Handler
	mu          sync.Mutex
	users       map[int64]int
	reconnected chan struct{}
}

func (s *memBus) wants(user int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[user] > 0
}

func (s *memBus) Subscribe(_ context.Context, users ...int64) error {
	s.b.mu.Lock()
	err := s.b.subscribeErr
	s.b.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		s.users[u]++
	}
	return err
}

func (s *memBus) Unsubscribe(_ context.Context, users ...int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		if s.users[u]--; s.users[u] <= 0 {
			delete(s.users, u)
		}
	}
	return nil
}

func (s *memBus) Reconnected() <-chan struct{} { return s.reconnected }

func (s *memBus) Publish(ctx context.Context, msgs ...eventbus.Message) error {
	return s.b.Publish(ctx, msgs...)
}

func (s *memBus) Close() error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	return nil
}

func newMemBus(b *broker, h eventbus.Handler) *memBus {
	s := &memBus{b: b, handler: h, users: map[int64]int{}, reconnected: make(chan struct{}, 1)}
	b.mu.Lock()
	b.subs[s] = true
	b.mu.Unlock()
	return s
}

// memSource is the event source spark.realtime.events.memtest <broker>.
type memSource struct {
	Broker string `json:"broker"`
}

func (memSource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "spark.realtime.events.memtest", New: func() caddy.Module { return new(memSource) }}
}

func (m *memSource) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.AllArgs(&m.Broker) {
		return d.ArgErr()
	}
	return nil
}

func (m *memSource) Open(h eventbus.Handler, _ *zap.Logger) (Bus, error) {
	return newMemBus(brokerFor(m.Broker), h), nil
}

// fakeOrigin stands in for the origin's API: per-user event logs with
// gapless seqs, conversations, sends (stored, then an event to both users,
// then published), read receipts. Tokens are verified as the origin does.
type fakeOrigin struct {
	t      testing.TB
	srv    *httptest.Server
	bus    eventbus.Publisher
	verify *authtoken.Verifier

	mu       sync.Mutex
	logs     map[int64][]json.RawMessage // user -> events (index seq-1)
	pruned   map[int64]int64             // user -> the highest seq pruned
	convs    map[int64][2]int64          // conversation -> its two users
	msgs     map[string]json.RawMessage  // idempotency: conv/sender/client id
	nextMsg  int64
	convSeq  map[int64]int64
	failing  bool           // answer 503
	revoked  map[int64]bool // answer 401 for these users
	requests map[string]int // "GET /api/events" -> count
	delay    time.Duration  // before answering a send
	// batchStatus, when set, answers POST /api/messages/batch as a whole
	// with it (404: an older origin without the route).
	batchStatus int
	mux         *http.ServeMux
	// eventsDelay holds GET /api/events before it reads the log.
	eventsDelay time.Duration
	// eventsHold, when set, holds GET /api/events until it is closed (or
	// the caller gives up): an overloaded origin.
	eventsHold chan struct{}
}

func newFakeOrigin(t testing.TB, bus eventbus.Publisher) *fakeOrigin {
	v, err := authtoken.NewVerifier(authtoken.Options{HS256: []authtoken.HMACKey{{Secret: []byte(testSecret)}, {ID: "k2", Secret: []byte(testSecret2)}}, Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := &fakeOrigin{t: t, bus: bus, verify: v, logs: map[int64][]json.RawMessage{}, pruned: map[int64]int64{},
		convs: map[int64][2]int64{}, msgs: map[string]json.RawMessage{}, convSeq: map[int64]int64{},
		revoked: map[int64]bool{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/events", o.auth(o.events))
	mux.HandleFunc("GET /api/conversations", o.auth(o.conversations))
	mux.HandleFunc("POST /api/conversations/{id}/messages", o.auth(o.send))
	mux.HandleFunc("POST /api/conversations/{id}/read", o.auth(o.read))
	mux.HandleFunc("POST "+sendBatchPath, o.sendBatch)
	o.mux = mux
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *fakeOrigin) url() string { return o.srv.URL }

func (o *fakeOrigin) count(what string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[what]
}

// setBatchStatus makes the batch route answer status as a whole (0: serve
// it).
func (o *fakeOrigin) setBatchStatus(status int) {
	o.mu.Lock()
	o.batchStatus = status
	o.mu.Unlock()
}

func (o *fakeOrigin) setFailing(f bool) {
	o.mu.Lock()
	o.failing = f
	o.mu.Unlock()
}

func (o *fakeOrigin) auth(next func(http.ResponseWriter, *http.Request, int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests[r.Method+" "+r.Pattern[strings.IndexByte(r.Pattern, ' ')+1:]]++
		failing := o.failing
		o.mu.Unlock()
		if failing {
			http.Error(w, `{"title":"Service Unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		id, err := o.verify.Verify(r.Header.Get("Authorization"))
		o.mu.Lock()
		revoked := err == nil && o.revoked[id.UserID]
		o.mu.Unlock()
		if err != nil || revoked {
			http.Error(w, `{"title":"Unauthorized","detail":"a valid bearer token is required"}`, http.StatusUnauthorized)
			return
		}
		next(w, r, id.UserID)
	}
}

// match makes conversation conv between users a and b, with a match event
// to both.
func (o *fakeOrigin) match(conv, a, b int64) {
	o.mu.Lock()
	o.convs[conv] = [2]int64{a, b}
	o.mu.Unlock()
	o.appendAndPublish(a, "match", map[string]any{"match_id": conv, "conversation_id": conv, "peer_id": b})
	o.appendAndPublish(b, "match", map[string]any{"match_id": conv, "conversation_id": conv, "peer_id": a})
}

// unmatch ends conversation conv, with an unmatch event to both.
func (o *fakeOrigin) unmatch(conv int64) {
	o.mu.Lock()
	users := o.convs[conv]
	delete(o.convs, conv)
	o.mu.Unlock()
	o.appendAndPublish(users[0], "unmatch", map[string]any{"match_id": conv, "conversation_id": conv, "peer_id": users[1]})
	o.appendAndPublish(users[1], "unmatch", map[string]any{"match_id": conv, "conversation_id": conv, "peer_id": users[0]})
}

// appendAndPublish appends an event to user's log and publishes it.
func (o *fakeOrigin) appendAndPublish(user int64, kind string, data any) int64 {
	seq, ev := o.append(user, kind, data)
	if o.bus != nil {
		_ = o.bus.Publish(context.Background(), eventbus.Message{UserID: user, Seq: seq, Payload: ev})
	}
	return seq
}

// append appends an event to user's log without publishing it (a publish
// the bus lost).
func (o *fakeOrigin) append(user int64, kind string, data any) (int64, json.RawMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	seq := int64(len(o.logs[user])) + 1
	d, _ := json.Marshal(data)
	ev, _ := json.Marshal(map[string]any{"seq": seq, "kind": kind, "at": time.Now().UTC(), "data": json.RawMessage(d)})
	o.logs[user] = append(o.logs[user], ev)
	return seq, ev
}

// prune forgets user's events up to seq (retention).
func (o *fakeOrigin) prune(user, seq int64) {
	o.mu.Lock()
	o.pruned[user] = seq
	o.mu.Unlock()
}

func (o *fakeOrigin) lastSeq(user int64) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.logs[user]))
}

func (o *fakeOrigin) events(w http.ResponseWriter, r *http.Request, me int64) {
	since, err1 := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
	if err1 != nil || err2 != nil || since < 0 || limit < 1 || limit > 1000 {
		http.Error(w, `{"title":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	wait, hold := o.eventsDelay, o.eventsHold
	o.mu.Unlock()
	time.Sleep(wait)
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	o.mu.Lock()
	log := o.logs[me]
	if since < o.pruned[me] || since > int64(len(log)) { // as the origin: 410 beyond the log too
		o.mu.Unlock()
		http.Error(w, `{"title":"Gone","detail":"resync"}`, http.StatusGone)
		return
	}
	var out []json.RawMessage
	for s := since; s < int64(len(log)) && len(out) < limit; s++ {
		out = append(out, log[s])
	}
	last := int64(len(log))
	o.mu.Unlock()
	if out == nil {
		out = []json.RawMessage{}
	}
	writeTestJSON(w, http.StatusOK, map[string]any{"events": out, "last_seq": last})
}

func (o *fakeOrigin) conversations(w http.ResponseWriter, _ *http.Request, me int64) {
	o.mu.Lock()
	list := []map[string]any{}
	for id, users := range o.convs {
		switch me {
		case users[0]:
			list = append(list, map[string]any{"id": id, "match_id": id, "peer_id": users[1]})
		case users[1]:
			list = append(list, map[string]any{"id": id, "match_id": id, "peer_id": users[0]})
		}
	}
	o.mu.Unlock()
	writeTestJSON(w, http.StatusOK, map[string]any{"conversations": list})
}

// member returns conv's other user when me is in it.
func (o *fakeOrigin) member(w http.ResponseWriter, r *http.Request, me int64) (conv, peer int64, ok bool) {
	conv, _ = strconv.ParseInt(r.PathValue("id"), 10, 64)
	o.mu.Lock()
	users, found := o.convs[conv]
	o.mu.Unlock()
	switch {
	case found && users[0] == me:
		return conv, users[1], true
	case found && users[1] == me:
		return conv, users[0], true
	}
	http.Error(w, `{"title":"Not Found","detail":"conversation not found"}`, http.StatusNotFound)
	return 0, 0, false
}

func (o *fakeOrigin) send(w http.ResponseWriter, r *http.Request, me int64) {
	conv, peer, ok := o.member(w, r, me)
	if !ok {
		return
	}
	var req struct {
		Body        string `json:"body"`
		ClientMsgID string `json:"client_msg_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Body == "" || req.ClientMsgID == "" {
		http.Error(w, `{"title":"Bad Request","detail":"body and client_msg_id are required"}`, http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	delay := o.delay
	key := fmt.Sprintf("%d/%d/%s", conv, me, req.ClientMsgID)
	if m, dup := o.msgs[key]; dup {
		o.mu.Unlock()
		writeTestJSON(w, http.StatusOK, m)
		return
	}
	o.nextMsg++
	o.convSeq[conv]++
	msg := map[string]any{"id": o.nextMsg, "conversation_id": conv, "conv_seq": o.convSeq[conv], "sender_id": me,
		"body": req.Body, "client_msg_id": req.ClientMsgID, "created_at": time.Now().UTC()}
	stored, _ := json.Marshal(msg)
	o.msgs[key] = stored
	o.mu.Unlock()
	time.Sleep(delay)
	o.appendAndPublish(me, "message", msg)
	o.appendAndPublish(peer, "message", msg)
	writeTestJSON(w, http.StatusCreated, json.RawMessage(stored))
}

// sendBatch answers POST /api/messages/batch as the origin does: each
// message as the single route would answer it with the message's token.
func (o *fakeOrigin) sendBatch(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.requests["POST "+sendBatchPath]++
	status, failing := o.batchStatus, o.failing
	o.mu.Unlock()
	switch {
	case status != 0:
		http.Error(w, `{"title":"`+http.StatusText(status)+`"}`, status)
		return
	case failing:
		http.Error(w, `{"title":"Service Unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != "" {
		http.Error(w, `{"title":"Bad Request","detail":"a batch carries a token per message"}`, http.StatusBadRequest)
		return
	}
	var req struct {
		Messages []sendItem `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"title":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	results := make([]map[string]any, len(req.Messages))
	for i, m := range req.Messages {
		body, _ := json.Marshal(map[string]string{"body": m.Body, "client_msg_id": m.ClientMsgID})
		one := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/api/conversations/%d/messages", m.ConversationID), bytes.NewReader(body))
		one.Header.Set("Authorization", "Bearer "+m.Token)
		rec := httptest.NewRecorder()
		o.mux.ServeHTTP(rec, one)
		key := "problem"
		if rec.Code/100 == 2 {
			key = "message"
		}
		results[i] = map[string]any{"status": rec.Code, key: json.RawMessage(rec.Body.Bytes())}
	}
	writeTestJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (o *fakeOrigin) read(w http.ResponseWriter, r *http.Request, me int64) {
	conv, peer, ok := o.member(w, r, me)
	if !ok {
		return
	}
	var req struct {
		MessageID int64 `json:"message_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.MessageID <= 0 {
		http.Error(w, `{"title":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	data := map[string]any{"conversation_id": conv, "reader_id": me, "message_id": req.MessageID}
	o.appendAndPublish(peer, "read", data)
	o.appendAndPublish(me, "read", data)
	w.WriteHeader(http.StatusNoContent)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// token issues a test token for user, valid for ttl.
func token(t testing.TB, user int64, ttl time.Duration) string {
	t.Helper()
	tok, err := authtoken.Issue([]byte(testSecret), user, authtoken.IssueOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// edge is Caddy loaded from a Caddyfile with one spark_realtime handler.
type edge struct {
	t      testing.TB
	addr   string // 127.0.0.1:port
	admin  int
	origin *fakeOrigin
	broker *broker
	render func(ports []int) string
}

// edgeCaddyfile is the test edge's Caddyfile: options are spark_realtime's
// extra lines.
func edgeCaddyfile(adminPort, sitePort int, originURL, brokerName, options string) string {
	return edgeCaddyfileKeys(adminPort, sitePort, originURL, brokerName, "hs256_secret {env."+secretEnv+"}", options)
}

// edgeCaddyfileKeys is edgeCaddyfile with the token options (keys) given.
func edgeCaddyfileKeys(adminPort, sitePort int, originURL, brokerName, keys, options string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	grace_period 1s
	metrics
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	handle /api/realtime {
		spark_realtime {
			origin %s
			%s
			events memtest %s
			%s
		}
	}
	respond "not realtime" 404
}
`, adminPort, sitePort, originURL, keys, brokerName, options)
}

// startEdge loads an edge with its own broker and fake origin.
func startEdge(t testing.TB, options string) *edge {
	t.Helper()
	t.Setenv(secretEnv, testSecret)
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	b := brokerFor(name)
	o := newFakeOrigin(t, b)
	e := &edge{t: t, origin: o, broker: b}
	e.render = func(ports []int) string { return edgeCaddyfile(ports[0], ports[1], o.url(), name, options) }
	ports := caddytest.LoadOnFreePorts(t, 2, e.render)
	e.admin, e.addr = ports[0], fmt.Sprintf("127.0.0.1:%d", ports[1])
	return e
}

// reload loads the edge's Caddyfile again with other options, and returns
// once the old server's socket is closed: new connections get the new
// options (caddytest.Reload).
func (e *edge) reload(options string) {
	e.t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(e.t.Name())
	port := e.addr[strings.LastIndexByte(e.addr, ':')+1:]
	p, _ := strconv.Atoi(port)
	caddytest.Reload(e.t, edgeCaddyfile(e.admin, p, e.origin.url(), name, options))
}

// reloadKeys loads the edge's Caddyfile again with other token options
// (keys) and options.
func (e *edge) reloadKeys(keys, options string) {
	e.t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(e.t.Name())
	port := e.addr[strings.LastIndexByte(e.addr, ':')+1:]
	p, _ := strconv.Atoi(port)
	caddytest.Load(e.t, edgeCaddyfileKeys(e.admin, p, e.origin.url(), name, keys, options))
}

// client is a gorilla client of the edge.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

// dial opens a connection with the given query (since=…) and headers.
func (e *edge) dial(query string, hdr http.Header) (*client, *http.Response, error) {
	return e.dialWith(websocket.Dialer{HandshakeTimeout: 5 * time.Second}, query, hdr)
}

// dialWith is dial with the given dialer.
func (e *edge) dialWith(d websocket.Dialer, query string, hdr http.Header) (*client, *http.Response, error) {
	u := "ws://" + e.addr + "/api/realtime"
	if query != "" {
		u += "?" + query
	}
	ws, res, err := d.Dial(u, hdr)
	if err != nil {
		return nil, res, err
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { _ = ws.Close() })
	return c, res, nil
}

// connect opens a connection for user with a fresh token in Authorization.
func (e *edge) connect(user int64, query string) *client {
	e.t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + token(e.t, user, time.Hour)}, "Sec-WebSocket-Protocol": {Subprotocol}}
	c, res, err := e.dial(query, hdr)
	if err != nil {
		e.t.Fatalf("dial as %d: %v (%v)", user, err, res)
	}
	return c
}

// next reads the next server frames (one message), failing after timeout.
func (c *client) next(timeout time.Duration) []serverFrame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	fs, err := decodeServerMessage(msg)
	if err != nil {
		c.t.Fatalf("server message %q: %v", msg, err)
	}
	return fs
}

// until reads frames until n of type typ arrived, returning them; other
// frames are kept in the second result.
func (c *client) until(typ string, n int, timeout time.Duration) (want, other []serverFrame) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(want) < n {
		for _, f := range c.next(time.Until(deadline)) {
			if f.Type == typ {
				want = append(want, f)
			} else {
				other = append(other, f)
			}
		}
	}
	return want, other
}

// send writes a frame.
func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closeCode reads until the connection ends and returns the server's
// close code and reason.
func (c *client) closeCode(timeout time.Duration) (int, string) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, ce.Text
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// seqs returns the seq of each event frame.
func seqs(t testing.TB, fs []serverFrame) []int64 {
	t.Helper()
	var out []int64
	for _, f := range fs {
		ev, err := decodeEvent(f.Event)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Seq)
	}
	return out
}

// edgeMetric sums the series of a metric on the admin API's /metrics
// (labels, written name{…}, filter when given: `code="1001"`).
func (e *edge) edgeMetric(name string, labels ...string) float64 {
	e.t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.admin))
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// revoke makes the origin refuse user's tokens (401).
func (o *fakeOrigin) revoke(user int64) {
	o.mu.Lock()
	o.revoked[user] = true
	o.mu.Unlock()
}

func itoa(n int) string { return strconv.Itoa(n) }
