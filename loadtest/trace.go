package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// TraceRecord is one request of a run as a trace line (JSON): enough to
// tell afterwards why a cacheable read missed (the same user's earlier
// read of the URL, the writes between).
type TraceRecord struct {
	// Sent is when the request left, in microseconds since the Unix epoch.
	Sent int64 `json:"t"`
	// User is the virtual user's id.
	User int64 `json:"u"`
	// Endpoint names the scenario endpoint.
	Endpoint string `json:"ep"`
	// Method and Path are the request's (Path with its query).
	Method string `json:"m"`
	Path   string `json:"p"`
	// Status is the response's status code.
	Status int `json:"s"`
	// CacheStatus is the response's Cache-Status field, verbatim.
	CacheStatus string `json:"cs,omitempty"`
	// Body is a write's request body (what it changed), empty for reads.
	Body string `json:"b,omitempty"`
	// Response is a write's response body when the scenario reads it
	// (the endpoint captures or checks), up to 512 bytes.
	Response string `json:"r,omitempty"`
}

// tracer writes TraceRecords as JSON lines, one request at a time.
type tracer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

// newTracer writes to w; nil when w is nil.
func newTracer(w io.Writer) *tracer {
	if w == nil {
		return nil
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	return &tracer{w: bw, enc: json.NewEncoder(bw)}
}

// record writes one line; the first error is kept for flush.
func (t *tracer) record(rec *TraceRecord) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = t.enc.Encode(rec)
	}
}

// flush writes out what is buffered and returns the first error.
func (t *tracer) flush() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = t.w.Flush()
	}
	if t.err != nil {
		return fmt.Errorf("write trace: %w", t.err)
	}
	return nil
}

// traceTime is t in microseconds since the Unix epoch.
func traceTime(t time.Time) int64 { return t.UnixMicro() }

// traceRequest records one request and its response in the run's trace.
func (r *run) traceRequest(vu *VU, ep *Endpoint, req *http.Request, resp *http.Response, sent time.Time, respBody []byte) {
	if r.trace == nil {
		return
	}
	rec := &TraceRecord{Sent: traceTime(sent), User: vu.ID, Endpoint: ep.Name, Method: ep.Method,
		Path: req.URL.RequestURI(), Status: resp.StatusCode, CacheStatus: resp.Header.Get("Cache-Status")}
	if ep.Body != nil && req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			body, _ := io.ReadAll(b)
			rec.Body = string(body)
		}
	}
	if req.Method != http.MethodGet && resp.Header.Get("Content-Encoding") == "" {
		rec.Response = string(respBody[:min(len(respBody), 512)])
	}
	r.trace.record(rec)
}
