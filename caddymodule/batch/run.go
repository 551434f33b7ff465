package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/spark-edge/spark/caddymodule/internal/problem"
)

// outcome is what one sub-request came to.
type outcome struct {
	status int
	header http.Header
	body   []byte
	result string // the spark_batch_subrequests_total label
}

// errResponseTooLarge is what the recorder answers a write past its limit.
var errResponseTooLarge = errors.New("spark_batch: sub-response larger than max_response_size")

// errAbandoned is what the recorder answers a write after the deadline.
var errAbandoned = errors.New("spark_batch: sub-request abandoned at the batch deadline")

// recorder is the http.ResponseWriter a sub-request is served to: it keeps
// the status, the header as it was when the status was written and up to
// limit bytes of body. Once abandoned (the deadline passed) it takes
// nothing more.
type recorder struct {
	header http.Header // the handler's map, until the status is written

	mu        sync.Mutex
	status    int
	sent      http.Header // snapshot at WriteHeader
	body      bytes.Buffer
	limit     int64
	overflow  bool
	abandoned bool
}

func newRecorder(limit int64) *recorder {
	return &recorder{header: make(http.Header), limit: limit}
}

// Header returns the header map the handler fills.
func (rec *recorder) Header() http.Header { return rec.header }

// WriteHeader records the first final status; 1xx responses (103 Early
// Hints) are not final and are dropped.
func (rec *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.writeHeaderLocked(code)
}

func (rec *recorder) writeHeaderLocked(code int) {
	if rec.status != 0 || rec.abandoned {
		return
	}
	rec.status = code
	rec.sent = rec.header.Clone()
}

// Write keeps p, up to the limit.
func (rec *recorder) Write(p []byte) (int, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.abandoned {
		return 0, errAbandoned
	}
	rec.writeHeaderLocked(http.StatusOK)
	if rec.overflow || int64(rec.body.Len()+len(p)) > rec.limit {
		rec.overflow = true
		return 0, errResponseTooLarge
	}
	return rec.body.Write(p)
}

// Flush does nothing: the body is sent when the sub-request is done. It
// lets handlers that flush (reverse_proxy streaming) run unchanged.
func (rec *recorder) Flush() {}

// tooLarge reports whether the handler wrote past the limit.
func (rec *recorder) tooLarge() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.overflow
}

// abandon makes the recorder take nothing more.
func (rec *recorder) abandon() {
	rec.mu.Lock()
	rec.abandoned = true
	rec.mu.Unlock()
}

// outcome is what the handler answered; call it after the handler returned.
func (rec *recorder) outcome() outcome {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.overflow {
		return problemOutcome(http.StatusBadGateway, subTooLarge, "Sub-response too large",
			fmt.Sprintf("the response was larger than %d bytes", rec.limit))
	}
	status, header := rec.status, rec.sent
	if status == 0 { // the handler wrote nothing: net/http's implicit 200
		status, header = http.StatusOK, rec.header.Clone()
	}
	return outcome{status: status, header: header, body: rec.body.Bytes(), result: statusResult(status)}
}

// problemOutcome is a problem+json outcome the batch made itself.
func problemOutcome(status int, result, title, detail string) outcome {
	h := make(http.Header)
	h.Set("Content-Type", problem.MediaType)
	h.Set("Cache-Control", "no-store")
	return outcome{status: status, header: h, body: batchProblem(status, title, detail, "").JSON(), result: result}
}

// deadlineOutcome answers a sub-request the deadline caught.
func deadlineOutcome(started bool) outcome {
	detail := "not started: the batch deadline had passed"
	if started {
		detail = "not answered by the batch deadline; whether it took effect is unknown"
	}
	return problemOutcome(http.StatusGatewayTimeout, subDeadline, "Batch deadline exceeded", detail)
}

// runner runs the sub-requests of one batch through serve.
type runner struct {
	serve       http.Handler
	build       func(ctx context.Context, s *subRequest) *http.Request
	concurrency int
	maxResponse int64
	done        func(i int, o outcome) // called once per sub-request, from any goroutine
}

// run runs subs in order of phases: a run of consecutive GET/HEAD
// sub-requests runs in parallel (at most concurrency at once); an unsafe
// one runs alone, after every sub-request before it finished, and before
// any after it starts. It returns when every sub-request has an outcome
// (the deadline of ctx included).
func (rn *runner) run(ctx context.Context, subs []*subRequest) {
	sem := make(chan struct{}, max(rn.concurrency, 1))
	for i := 0; i < len(subs); {
		if !subs[i].safe() {
			rn.done(i, rn.one(ctx, subs[i]))
			i++
			continue
		}
		j := i
		for j < len(subs) && subs[j].safe() {
			j++
		}
		var wg sync.WaitGroup
		for k := i; k < j; k++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				rn.done(k, deadlineOutcome(false))
				continue
			}
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				defer func() { <-sem }()
				rn.done(k, rn.one(ctx, subs[k]))
			}(k)
		}
		wg.Wait()
		i = j
	}
}

// one serves a single sub-request, or gives up on it at the deadline.
func (rn *runner) one(ctx context.Context, s *subRequest) outcome {
	if ctx.Err() != nil {
		return deadlineOutcome(false)
	}
	rec := newRecorder(rn.maxResponse)
	req := rn.build(ctx, s)
	finished := make(chan outcome, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel value, as net/http compares it
					// reverse_proxy aborts when a write fails: the
					// recorder's limit, or the deadline.
					if rec.tooLarge() {
						finished <- rec.outcome()
						return
					}
					finished <- problemOutcome(http.StatusBadGateway, subServerError, "Sub-request aborted", "the route aborted the response")
					return
				}
				finished <- problemOutcome(http.StatusInternalServerError, subPanic, "Sub-request failed", "the route failed on this request")
			}
		}()
		rn.serve.ServeHTTP(rec, req)
		finished <- decodeContent(rec.outcome(), rn.maxResponse)
	}()
	select {
	case o := <-finished:
		return o
	case <-ctx.Done():
		select { // it may have finished at the same moment
		case o := <-finished:
			return o
		default:
		}
		rec.abandon()
		return deadlineOutcome(true)
	}
}
