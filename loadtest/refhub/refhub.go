// Package refhub is the reference the realtime figures are compared with: a
// minimal in-process gorilla/websocket hub speaking enough of spark.v1 for
// the chat scenario (send, typing, ack, since), with no origin, no bus and
// no durability — the physical limit of one process on this machine.
//
// Conversations are fixed (chat.PairingFixed): conversation k joins users
// FirstUser+2(k-1) and FirstUser+2(k-1)+1. Each user's events live in
// memory for the hub's life.
package refhub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Hub.
type Options struct {
	// Secret verifies the HS256 bearer tokens (the user is the sub).
	Secret string
	// FirstUser is the first user of conversation 1 (default 1).
	FirstUser int64
	// Queue bounds each connection's outgoing frames (default 1000); a
	// connection whose queue is full is closed with 1013.
	Queue int
}

// Hub serves GET /api/realtime and GET /metrics (Go and process
// collectors: the heap and RSS the memory figure reads).
type Hub struct {
	o      Options
	up     websocket.Upgrader
	shards [64]shard
	msgID  atomic.Int64
	mux    *http.ServeMux
}

type shard struct {
	mu    sync.Mutex
	users map[int64]*userState
}

// userState is one user's event log and open connections (guarded by mu,
// so an event is logged and queued to every connection in one step, and a
// resume replays and registers in one step: no gap, no duplicate).
type userState struct {
	mu    sync.Mutex
	log   [][]byte // event frames; seq i+1 at index i
	conns map[*conn]struct{}
	sent  map[string][]byte // client_msg_id -> the stored message (idempotent sends)
}

// conn is one connection: a bounded queue (a slice, so an idle connection
// holds no preallocated slots) drained by one writer goroutine.
type conn struct {
	ws    *websocket.Conn
	max   int
	mu    sync.Mutex
	q     [][]byte
	wake  chan struct{} // cap 1: the queue has frames
	once  sync.Once
	close chan struct{}
}

// New returns a hub.
func New(o Options) *Hub {
	if o.FirstUser <= 0 {
		o.FirstUser = 1
	}
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	h := &Hub{o: o, up: websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
		Subprotocols: []string{"spark.v1"}, CheckOrigin: func(*http.Request) bool { return true }}}
	for i := range h.shards {
		h.shards[i].users = map[int64]*userState{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /api/realtime", h.serveWS)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Hub) user(id int64) *userState {
	sh := &h.shards[id%int64(len(h.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.users[id]
	if u == nil {
		u = &userState{conns: map[*conn]struct{}{}, sent: map[string][]byte{}}
		sh.users[id] = u
	}
	return u
}

// authenticate returns the user of a bearer token.
func (h *Hub) authenticate(header string) (int64, error) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return 0, errors.New("no bearer token")
	}
	var c jwt.RegisteredClaims
	if _, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(h.o.Secret), nil },
		jwt.WithValidMethods([]string{"HS256"})); err != nil {
		return 0, fmt.Errorf("token: %w", err)
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, errors.New("token: sub is not a user id")
	}
	return id, nil
}

// peer returns the other member of conversation conv if me is one.
func (h *Hub) peer(me, conv int64) (int64, bool) {
	if conv <= 0 {
		return 0, false
	}
	a := h.o.FirstUser + 2*(conv-1)
	switch me {
	case a:
		return a + 1, true
	case a + 1:
		return a, true
	}
	return 0, false
}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	me, err := h.authenticate(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	since, hasSince := int64(0), r.URL.Query().Has("since")
	if hasSince {
		if since, err = strconv.ParseInt(r.URL.Query().Get("since"), 10, 64); err != nil || since < 0 {
			http.Error(w, "since must be a non-negative integer", http.StatusBadRequest)
			return
		}
	}
	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, max: h.o.Queue, wake: make(chan struct{}, 1), close: make(chan struct{})}
	u := h.user(me)
	u.mu.Lock()
	if hasSince {
		for i := since; i < int64(len(u.log)); i++ {
			c.push(u.log[i])
		}
	}
	u.conns[c] = struct{}{}
	u.mu.Unlock()
	go c.write()
	h.read(me, u, c)
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
	c.shut(websocket.CloseNormalClosure, "")
}

// push queues a frame; a full queue closes the connection (slow consumer).
func (c *conn) push(f []byte) {
	c.mu.Lock()
	full := len(c.q) >= c.max
	if !full {
		c.q = append(c.q, f)
	}
	c.mu.Unlock()
	if full {
		c.shut(1013, "slow consumer")
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) shut(code int, reason string) {
	c.once.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		close(c.close)
		_ = c.ws.Close()
	})
}

// write sends queued frames, coalescing what is queued into one message.
func (c *conn) write() {
	var buf []byte
	for {
		select {
		case <-c.close:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		q := c.q
		c.q = nil
		c.mu.Unlock()
		if len(q) == 0 {
			continue
		}
		buf = buf[:0]
		for i, f := range q {
			if i > 0 {
				buf = append(buf, '\n')
			}
			buf = append(buf, f...)
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.ws.WriteMessage(websocket.TextMessage, buf); err != nil {
			c.shut(websocket.CloseInternalServerErr, "write failed")
			return
		}
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a burst's buffer for an idle connection
		}
	}
}

type clientFrame struct {
	Type           string `json:"type"`
	ConversationID int64  `json:"conversation_id"`
	Body           string `json:"body"`
	ClientMsgID    string `json:"client_msg_id"`
}

func (h *Hub) read(me int64, u *userState, c *conn) {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var f clientFrame
		if json.Unmarshal(msg, &f) != nil {
			c.push([]byte(`{"type":"error","ref":"","code":"bad_frame","detail":"not a JSON frame object"}`))
			continue
		}
		switch f.Type {
		case "ack", "read":
		case "typing":
			if p, ok := h.peer(me, f.ConversationID); ok {
				h.deliver(p, fmt.Appendf(nil, `{"type":"typing","conversation_id":%d,"user_id":%d}`, f.ConversationID, me))
			}
		case "send":
			h.send(me, u, c, f)
		default:
			c.push([]byte(`{"type":"error","ref":"","code":"unknown_type","detail":"unknown frame type"}`))
		}
	}
}

// send stores a message in memory, logs an event for both members and
// answers sent.
func (h *Hub) send(me int64, u *userState, c *conn, f clientFrame) {
	p, ok := h.peer(me, f.ConversationID)
	if !ok || f.ClientMsgID == "" || f.Body == "" {
		b, _ := json.Marshal(f.ClientMsgID)
		c.push(fmt.Appendf(nil, `{"type":"error","ref":%s,"code":"not_member","detail":"not a conversation of yours"}`, b))
		return
	}
	u.mu.Lock()
	stored, dup := u.sent[f.ClientMsgID]
	if !dup {
		m := map[string]any{"id": h.msgID.Add(1), "conversation_id": f.ConversationID, "sender_id": me, "body": f.Body,
			"client_msg_id": f.ClientMsgID, "created_at": time.Now().UTC()}
		stored, _ = json.Marshal(m)
		u.sent[f.ClientMsgID] = stored
	}
	u.mu.Unlock()
	id, _ := json.Marshal(f.ClientMsgID)
	if !dup {
		h.logEvent(me, stored)
		h.logEvent(p, stored)
	}
	c.push(fmt.Appendf(nil, `{"type":"sent","client_msg_id":%s,"message":%s}`, id, stored))
}

// logEvent appends a message event to user's log and queues it to its
// connections.
func (h *Hub) logEvent(user int64, message []byte) {
	u := h.user(user)
	u.mu.Lock()
	defer u.mu.Unlock()
	seq := len(u.log) + 1
	f := fmt.Appendf(nil, `{"type":"event","event":{"seq":%d,"kind":"message","at":%q,"data":%s}}`, seq, time.Now().UTC().Format(time.RFC3339Nano), message)
	u.log = append(u.log, f)
	for c := range u.conns {
		c.push(f)
	}
}

// deliver queues an ephemeral frame to user's connections.
func (h *Hub) deliver(user int64, f []byte) {
	u := h.user(user)
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		c.push(f)
	}
}
