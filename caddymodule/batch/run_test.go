package batch

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// GET/HEAD sub-requests run at most concurrency at once: the route holds
// every request until the test has seen the bound reached, and no more
// than the bound ever start.
func TestRunConcurrencyBound(t *testing.T) {
	const n, bound = 7, 3
	var mu sync.Mutex
	inFlight, peak := 0, 0
	reached := make(chan struct{})
	release := make(chan struct{})
	route := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		if inFlight == bound {
			select {
			case <-reached:
			default:
				close(reached)
			}
		}
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	subs := make([]*subRequest, n)
	for i := range subs {
		subs[i] = &subRequest{id: string(rune('a' + i)), method: http.MethodGet, url: &url.URL{Path: "/api/x"}, header: http.Header{}}
	}
	outs := make([]outcome, n)
	rn := &runner{serve: route, concurrency: bound, maxResponse: 1 << 10,
		build: func(ctx context.Context, s *subRequest) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, s.method, s.url.String(), http.NoBody)
			return r
		},
		done: func(i int, o outcome) { outs[i] = o }}
	finished := make(chan struct{})
	go func() {
		rn.run(t.Context(), subs)
		close(finished)
	}()
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the bound was never reached")
	}
	close(release)
	<-finished
	if peak != bound {
		t.Errorf("peak %d, want %d", peak, bound)
	}
	for i, o := range outs {
		if o.status != http.StatusNoContent {
			t.Errorf("%d: %d", i, o.status)
		}
	}
}

// A panicking route is one sub-request's 500; the others are answered.
func TestRunPanicStaysLocal(t *testing.T) {
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/panic" {
			panic("boom")
		}
		_, _ = w.Write([]byte("fine"))
	})
	subs := []*subRequest{
		{id: "p", method: http.MethodGet, url: &url.URL{Path: "/api/panic"}, header: http.Header{}},
		{id: "f", method: http.MethodPost, url: &url.URL{Path: "/api/fine"}, header: http.Header{}},
	}
	outs := make([]outcome, 2)
	rn := &runner{serve: route, concurrency: 2, maxResponse: 1 << 10,
		build: func(ctx context.Context, s *subRequest) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, s.method, s.url.String(), http.NoBody)
			return r
		},
		done: func(i int, o outcome) { outs[i] = o }}
	rn.run(t.Context(), subs)
	if outs[0].status != 500 || outs[0].result != subPanic || outs[1].status != 200 || string(outs[1].body) != "fine" {
		t.Errorf("%+v", outs)
	}
}

// The recorder drops 1xx, keeps the header as of the status, and refuses
// writes past its limit or after it was abandoned.
func TestRecorder(t *testing.T) {
	rec := newRecorder(4)
	rec.Header().Set("Link", "</a.jpg>; rel=preload")
	rec.WriteHeader(http.StatusEarlyHints)
	rec.Header().Set("X-A", "1")
	rec.WriteHeader(http.StatusCreated)
	rec.Header().Set("X-Late", "1")
	if _, err := rec.Write([]byte("abcd")); err != nil {
		t.Fatal(err)
	}
	o := rec.outcome()
	if o.status != 201 || o.header.Get("X-A") != "1" || o.header.Get("X-Late") != "" || string(o.body) != "abcd" {
		t.Errorf("%+v", o)
	}
	if _, err := rec.Write([]byte("e")); err != errResponseTooLarge {
		t.Errorf("over the limit: %v", err)
	}
	if o := rec.outcome(); o.status != http.StatusBadGateway || o.result != subTooLarge {
		t.Errorf("%+v", o)
	}
	rec = newRecorder(4)
	rec.abandon()
	if _, err := rec.Write([]byte("a")); err != errAbandoned {
		t.Errorf("abandoned: %v", err)
	}
}

// A batch reached as a sub-request of a batch (a rewrite, another
// spelling) is refused as a whole, whatever it holds.
func TestNestedBatchRefused(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	ran := false
	route := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true })
	r := httptest.NewRequest(http.MethodPost, "/api/other", strings.NewReader(`{"requests":[{"id":"a","path":"/api/x"}]}`))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(context.WithValue(r.Context(), subKey{}, true))
	w := httptest.NewRecorder()
	h.serveBatch(w, r, route)
	if w.Code != http.StatusUnprocessableEntity || ran || w.Header().Get("Content-Type") != mediaProblem {
		t.Errorf("%d ran=%v %s", w.Code, ran, w.Body)
	}
}

// gzip and zstd sub-responses are embedded decoded, without their
// Content-Encoding; a bomb over the limit is too_large; garbage is a 502.
func TestDecodeContent(t *testing.T) {
	plain := []byte(`{"a":"` + strings.Repeat("x", 100) + `"}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)
	for coding, body := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		h := http.Header{"Content-Encoding": {coding}, "Content-Type": {"application/json"}}
		o := decodeContent(outcome{status: 200, header: h, body: body, result: subSuccess}, 1<<10)
		if o.status != 200 || !bytes.Equal(o.body, plain) || o.header.Get("Content-Encoding") != "" || h.Get("Content-Encoding") != coding {
			t.Errorf("%s: %d %q %v", coding, o.status, o.body, o.header)
		}
		if o := decodeContent(outcome{status: 200, header: h, body: body}, 50); o.status != 502 || o.result != subTooLarge {
			t.Errorf("%s over the limit: %+v", coding, o)
		}
		if o := decodeContent(outcome{status: 200, header: h, body: []byte("garbage")}, 1<<10); o.status != 502 || o.result != subServerError {
			t.Errorf("%s garbage: %+v", coding, o)
		}
	}
	br := outcome{status: 200, header: http.Header{"Content-Encoding": {"br"}}, body: []byte{1, 2}}
	if o := decodeContent(br, 1<<10); o.status != 200 || o.header.Get("Content-Encoding") != "br" {
		t.Errorf("br: %+v", o)
	}
}
