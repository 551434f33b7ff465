package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// The edge's send coalescing: the messages its connections send while
// earlier ones are on their way to the origin travel together in one
// POST /api/messages/batch.
const (
	// sendBatchPath is the origin's batch route.
	sendBatchPath = "/api/messages/batch"
	// sendBatchCalls is how many batch calls an edge (per config) has in
	// flight at once; sends arriving while all are out wait for the next.
	sendBatchCalls = 4
	// sendBatchMax is the most messages one call carries (the origin takes
	// up to 128).
	sendBatchMax = 64
	// sendBatchBytes bounds the body of one call (encodedSize; the origin
	// takes up to 4 MiB).
	sendBatchBytes = 1 << 20
)

// sendBatcher coalesces an edge's message sends: a send is queued, and up
// to sendBatchCalls goroutines, each running while sends are queued, post
// whatever queued while their previous call was out in one batch call.
// Every message carries its own user's token; the origin authorises,
// checks and answers each alone, so a refused one fails alone. Order: a
// connection sends one message per conversation at a time (orderedCalls),
// and the origin stores a batch's messages of one conversation in batch
// order. An origin without the batch route (404, 405) is then called once
// per message.
type sendBatcher struct {
	o      *originClient
	single atomic.Bool // the origin has no batch route

	mu    sync.Mutex
	queue []*queuedSend
	calls int // batch calls in flight
}

// queuedSend is one send waiting for its batch call.
type queuedSend struct {
	ctx  context.Context
	item sendItem
	size int
	done chan sendOutcome // buffered: never blocks the batch call
}

// sendItem is one message of a batch call (origin.SendBatchItem).
type sendItem struct {
	Token          string `json:"token"`
	ConversationID int64  `json:"conversation_id"`
	Body           string `json:"body"`
	ClientMsgID    string `json:"client_msg_id"`
}

// sendOutcome is the origin's answer to one send: the stored message,
// compact, and the write's read-your-writes position, or an error.
type sendOutcome struct {
	msg       []byte
	readAfter string
	err       error
}

// sendResult is one message's answer in a batch (origin.SendBatchResult).
type sendResult struct {
	Status  int             `json:"status"`
	Message json.RawMessage `json:"message"`
	Problem json.RawMessage `json:"problem"`
	// Purge are the cache tags a stored message changed.
	Purge []string `json:"purge"`
}

// send stores a message through the origin, in a batch call, and returns
// the stored message as the origin wrote it, compact, and the batch's
// Spark-Read-After (a position at or after this message's write).
func (b *sendBatcher) send(ctx context.Context, token string, conv int64, body, clientMsgID string) ([]byte, string, error) {
	if b.single.Load() {
		return b.o.sendOne(ctx, token, conv, body, clientMsgID)
	}
	q := &queuedSend{ctx: ctx, item: sendItem{Token: token, ConversationID: conv, Body: body, ClientMsgID: clientMsgID},
		size: encodedSize(token, body, clientMsgID), done: make(chan sendOutcome, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	start := b.calls < sendBatchCalls
	if start {
		b.calls++
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
	select {
	case r := <-q.done:
		return r.msg, r.readAfter, r.err
	case <-ctx.Done():
		return nil, "", &originError{err: ctx.Err()}
	}
}

// encodedSize bounds a message's size in a batch body: JSON escapes a
// byte into at most 6 (\u00XX), and the field names and punctuation take
// under 96.
func encodedSize(token, body, clientMsgID string) int {
	return len(token) + 6*(len(body)+len(clientMsgID)) + 96
}

// run posts batches until nothing is queued.
func (b *sendBatcher) run() {
	for {
		batch := b.take()
		if batch == nil {
			return
		}
		b.post(batch)
	}
}

// take returns the next batch: the queued sends still wanted, up to
// sendBatchMax and about sendBatchBytes; nil (and one call fewer) when
// nothing is queued.
func (b *sendBatcher) take() []*queuedSend {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*queuedSend
	n, size := 0, 0
	for ; n < len(b.queue) && len(batch) < sendBatchMax; n++ {
		q := b.queue[n]
		if q.ctx.Err() != nil {
			continue // its sender gave up: not sent
		}
		if len(batch) > 0 && size+q.size > sendBatchBytes {
			break
		}
		batch = append(batch, q)
		size += q.size
	}
	b.queue = append(b.queue[:0:0], b.queue[n:]...)
	if len(batch) == 0 && len(b.queue) == 0 {
		b.calls--
		return nil
	}
	return batch
}

// post sends one batch call, purges the cache tags of its stored
// messages (all in one purge) and answers each of its sends.
func (b *sendBatcher) post(batch []*queuedSend) {
	items := make([]sendItem, len(batch))
	for i, q := range batch {
		items[i] = q.item
	}
	results, readAfter, err := b.call(items)
	if statusOf(err) == http.StatusNotFound || statusOf(err) == http.StatusMethodNotAllowed {
		// An origin from before the batch route: one call per message
		// from now on (these included, each in its own goroutine: they
		// are of different connections or conversations).
		b.single.Store(true)
		for _, q := range batch {
			go func() {
				msg, readAfter, err := b.o.sendOne(q.ctx, q.item.Token, q.item.ConversationID, q.item.Body, q.item.ClientMsgID)
				q.done <- sendOutcome{msg: msg, readAfter: readAfter, err: err}
			}()
		}
		return
	}
	var tags []string
	for _, r := range results {
		tags = appendNew(tags, r.Purge)
	}
	b.o.purges.apply(tags) // before any sent frame: see cachePurges
	for i, q := range batch {
		if err != nil {
			q.done <- sendOutcome{err: err}
			continue
		}
		q.done <- results[i].outcome(readAfter)
	}
}

// call posts items to the origin's batch route and returns one result per
// item, and the answer's Spark-Read-After: the position of the batch's
// last write, which every message it stored shares.
func (b *sendBatcher) call(items []sendItem) ([]sendResult, string, error) {
	body, err := json.Marshal(struct {
		Messages []sendItem `json:"messages"`
	}{items})
	if err != nil {
		return nil, "", &originError{err: fmt.Errorf("POST %s: encode: %w", sendBatchPath, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.o.timeout)
	defer cancel()
	data, readAfter, err := b.o.doReadAfter(ctx, "", http.MethodPost, sendBatchPath, body)
	if st := statusOf(err); st/100 == 4 && st != http.StatusNotFound && st != http.StatusMethodNotAllowed && st != http.StatusTooManyRequests {
		// The batch refused as a whole says nothing of any one message
		// (a 401 here is no user's token): the origin failed them all.
		return nil, "", &originError{err: fmt.Errorf("POST %s: the batch was refused: %w", sendBatchPath, err)}
	}
	if err != nil {
		return nil, "", err
	}
	var answer struct {
		Results []sendResult `json:"results"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return nil, "", &originError{err: fmt.Errorf("POST %s: %s", sendBatchPath, jsonProblem(err))}
	}
	if len(answer.Results) != len(items) {
		return nil, "", &originError{err: fmt.Errorf("POST %s: %d results for %d messages", sendBatchPath, len(answer.Results), len(items))}
	}
	return answer.Results, readAfter, nil
}

// outcome is what the single route's answer would have been; readAfter
// is the batch's position.
func (r sendResult) outcome(readAfter string) sendOutcome {
	if r.Status/100 != 2 {
		return sendOutcome{err: &originError{status: r.Status, detail: problemDetail(r.Problem, r.Status)}}
	}
	msg, err := compactJSON(bytes.TrimSpace(r.Message))
	if err != nil || len(msg) == 0 || msg[0] != '{' {
		return sendOutcome{err: &originError{err: errors.New("POST " + sendBatchPath + ": a message is not a JSON object")}}
	}
	return sendOutcome{msg: msg, readAfter: readAfter}
}
