package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// originClient calls the origin's API on behalf of connected users, with
// their own tokens, on one pooled keep-alive client, at most maxInFlight
// requests at a time for the whole edge (per config).
type originClient struct {
	base    string // scheme://host[:port], no trailing slash
	client  *http.Client
	slots   chan struct{}
	timeout time.Duration
	sends   *sendBatcher // message sends, coalesced into batch calls
	// purges applies the purges the origin's answers name (set at
	// Provision; the zero value purges nothing).
	purges cachePurges
}

// Bounds of the origin's answers the edge reads.
const (
	maxOriginBody   = 8 << 20
	eventsPageLimit = 1000
)

func newOriginClient(base string, timeout time.Duration, maxInFlight int) *originClient {
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	o := &originClient{
		base:    strings.TrimRight(base, "/"),
		client:  &http.Client{Transport: transport, Timeout: timeout},
		slots:   make(chan struct{}, maxInFlight),
		timeout: timeout,
	}
	o.sends = &sendBatcher{o: o}
	return o
}

// close releases the idle connections.
func (o *originClient) close() { o.client.CloseIdleConnections() }

// originError is an answer from the origin other than success, or no
// answer at all (status 0).
type originError struct {
	status int
	detail string
	err    error
}

func (e *originError) Error() string {
	if e.status == 0 {
		return "origin unavailable: " + e.err.Error()
	}
	return "origin answered " + strconv.Itoa(e.status) + ": " + e.detail
}

func (e *originError) Unwrap() error { return e.err }

// statusOf returns the origin's status for err (0: none).
func statusOf(err error) int {
	var oe *originError
	if errors.As(err, &oe) {
		return oe.status
	}
	return 0
}

// asFrameError turns a failed call into the error frame the client gets.
func asFrameError(ref string, err error) *frameError {
	var oe *originError
	if !errors.As(err, &oe) || oe.status == 0 || oe.status >= 500 || oe.status == http.StatusTooManyRequests {
		code := codeOriginUnavailable
		if statusOf(err) == http.StatusTooManyRequests {
			code = codeRateLimited
		}
		return &frameError{ref: ref, code: code, detail: "the origin could not handle it now; retry"}
	}
	code := codeInvalid
	switch oe.status {
	case http.StatusForbidden, http.StatusNotFound:
		code = codeNotMember
	case http.StatusConflict:
		code = codeConflict
	}
	return &frameError{ref: ref, code: code, detail: oe.detail}
}

// do sends one request with the user's token (none: "") and returns the
// body of a 2xx answer. The answer's Spark-Purge is applied first.
func (o *originClient) do(ctx context.Context, token, method, path string, body []byte) ([]byte, error) {
	data, _, err := o.doReadAfter(ctx, token, method, path, body)
	return data, err
}

// doReadAfter is do, also returning the answer's Spark-Read-After (the
// write's read-your-writes position; "" when it has none), untouched.
func (o *originClient) doReadAfter(ctx context.Context, token, method, path string, body []byte) (data []byte, readAfter string, err error) {
	select {
	case o.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, "", &originError{err: ctx.Err()}
	}
	defer func() { <-o.slots }()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.base+path, rd)
	if err != nil {
		return nil, "", &originError{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "spark-realtime")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := o.client.Do(req)
	if err != nil {
		return nil, "", &originError{err: fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer res.Body.Close()
	data, err = io.ReadAll(io.LimitReader(res.Body, maxOriginBody))
	if err != nil {
		return nil, "", &originError{err: fmt.Errorf("%s %s: read answer: %w", method, path, err)}
	}
	if v := res.Header.Values(contract.SparkPurge); len(v) > 0 {
		o.purges.apply(contract.AppendTags(nil, v))
	}
	if res.StatusCode/100 != 2 {
		return nil, "", &originError{status: res.StatusCode, detail: problemDetail(data, res.StatusCode)}
	}
	return data, readAfterOf(res.Header), nil
}

// readAfterOf is an answer's Spark-Read-After when it is one short
// printable token (a WAL position, "16/B374D848"), else "": the edge passes
// the origin's position on without interpreting it.
func readAfterOf(h http.Header) string {
	v := h.Values(contract.ReadAfter)
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 32 {
		return ""
	}
	for i := range len(v[0]) {
		if c := v[0][i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return ""
		}
	}
	return v[0]
}

// problemDetail is a problem document's detail (or title), else the status
// text.
func problemDetail(body []byte, status int) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil {
		if p.Detail != "" {
			return truncate(p.Detail, 256)
		}
		if p.Title != "" {
			return truncate(p.Title, 256)
		}
	}
	return http.StatusText(status)
}

// eventsPage is an answer of GET /api/events.
type eventsPage struct {
	// Events are the user's events after since, ascending, as JSON.
	Events []json.RawMessage `json:"events"`
	// LastSeq is the user's newest seq.
	LastSeq int64 `json:"last_seq"`
}

// events fetches the user's events with seq > since (at most limit).
func (o *originClient) events(ctx context.Context, token string, since int64, limit int) (eventsPage, error) {
	data, err := o.do(ctx, token, http.MethodGet, "/api/events?since="+strconv.FormatInt(since, 10)+"&limit="+strconv.Itoa(limit), nil)
	if err != nil {
		return eventsPage{}, err
	}
	var p eventsPage
	if err := json.Unmarshal(data, &p); err != nil {
		return eventsPage{}, &originError{err: fmt.Errorf("GET /api/events: %s", jsonProblem(err))}
	}
	return p, nil
}

// conversations fetches the user's open conversations: conversation id ->
// peer id.
func (o *originClient) conversations(ctx context.Context, token string) (map[int64]int64, error) {
	data, err := o.do(ctx, token, http.MethodGet, "/api/conversations", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Conversations []struct {
			ID     int64 `json:"id"`
			PeerID int64 `json:"peer_id"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, &originError{err: fmt.Errorf("GET /api/conversations: %s", jsonProblem(err))}
	}
	peers := make(map[int64]int64, len(list.Conversations))
	for _, c := range list.Conversations {
		peers[c.ID] = c.PeerID
	}
	return peers, nil
}

// send stores a message, coalesced with the edge's other sends into one
// batch call (sendBatcher). It returns the stored message as the origin
// wrote it, compact, and the write's read-your-writes position (its
// Spark-Read-After; "" when the origin gave none).
func (o *originClient) send(ctx context.Context, token string, conv int64, body, clientMsgID string) ([]byte, string, error) {
	return o.sends.send(ctx, token, conv, body, clientMsgID)
}

// sendOne stores a message in a call of its own: POST
// /api/conversations/{id}/messages. It returns what send returns.
func (o *originClient) sendOne(ctx context.Context, token string, conv int64, body, clientMsgID string) ([]byte, string, error) {
	req, _ := json.Marshal(struct {
		Body        string `json:"body"`
		ClientMsgID string `json:"client_msg_id"`
	}{body, clientMsgID})
	data, readAfter, err := o.doReadAfter(ctx, token, http.MethodPost, "/api/conversations/"+strconv.FormatInt(conv, 10)+"/messages", req)
	if err != nil {
		return nil, "", err
	}
	msg, err := compactJSON(bytes.TrimSpace(data))
	if err != nil || len(msg) == 0 || msg[0] != '{' {
		return nil, "", &originError{err: errors.New("POST messages: the answer is not a JSON object")}
	}
	return msg, readAfter, nil
}

// read records a read receipt: POST /api/conversations/{id}/read.
func (o *originClient) read(ctx context.Context, token string, conv, messageID int64) error {
	req := []byte(`{"message_id":` + strconv.FormatInt(messageID, 10) + `}`)
	_, err := o.do(ctx, token, http.MethodPost, "/api/conversations/"+strconv.FormatInt(conv, 10)+"/read", req)
	return err
}
