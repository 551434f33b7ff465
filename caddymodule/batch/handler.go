package batch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/spark-edge/spark/caddymodule/internal/problem"
	"github.com/spark-edge/spark/internal/contract"
)

// Media types of the batch exchange.
const (
	mediaJSON    = "application/json"
	mediaNDJSON  = "application/x-ndjson"
	mediaProblem = problem.MediaType
)

// subKey marks the context of a sub-request, so a batch reached from a
// batch (by any path spelling or rewrite) is refused.
type subKey struct{}

// inheritedHeaders are the batch request's fields every sub-request
// carries (canonical names), besides the Sec-CH-* client hints: the
// caller's credential and what describes the caller's device and network.
// A sub-request's own headers may override the hints, never Authorization.
// Accept-Encoding is carried so that sub-requests use the cache variants
// the client's own requests use (bodies are decoded before embedding).
var inheritedHeaders = []string{"Authorization", "User-Agent", "Accept-Language", "Accept-Encoding",
	"Save-Data", "Ect", "Downlink", "Rtt", "Dpr", "Viewport-Width", "Width", "Device-Memory"}

// ServeHTTP answers a batch: it never calls next. The route each
// sub-request is served through is the Caddy server of the batch request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("spark_batch: no Caddy server in the request context"))
	}
	h.serveBatch(w, r, srv)
	return nil
}

// serveBatch checks, runs and answers the batch r, serving its
// sub-requests through route.
func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request, route http.Handler) {
	if r.Context().Value(subKey{}) != nil {
		h.reject(w, r, unprocessable("a batch may not be a sub-request of a batch"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, &inputError{status: http.StatusMethodNotAllowed, title: "Method Not Allowed", detail: "a batch is sent with POST"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaJSON {
		h.reject(w, r, &inputError{status: http.StatusUnsupportedMediaType, title: "Unsupported Media Type", detail: "a batch is sent as application/json"})
		return
	}
	body, closeBody, ie := openBatchBody(r.Body, r.Header.Values("Content-Encoding"), h.MaxBatchSize)
	if ie != nil {
		if ie.status == http.StatusUnsupportedMediaType {
			w.Header().Set("Accept-Encoding", requestCodings)
		}
		h.reject(w, r, ie)
		return
	}
	subs, err := decodeBatch(body, h.limits(r))
	closeBody()
	if err != nil {
		var ie *inputError
		if !errors.As(err, &ie) {
			ie = badRequest("%v", err)
		}
		h.reject(w, r, ie)
		return
	}
	h.metrics.batchServed(len(subs))

	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), subKey{}, true), time.Duration(h.Timeout))
	defer cancel()
	rn := &runner{serve: route, build: subRequestBuilder(r), concurrency: h.Concurrency, maxResponse: h.MaxResponseSize}

	hdr := w.Header()
	hdr.Set("Cache-Control", "private, no-store")
	if h.Streaming && acceptsNDJSON(r.Header.Values("Accept")) {
		hdr.Set("Content-Type", mediaNDJSON)
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		var mu sync.Mutex
		rn.done = func(i int, o outcome) {
			h.metrics.sub(o.result)
			line := encodeResult(subs[i], i, o, h.keep)
			line = append(line, '\n')
			mu.Lock()
			defer mu.Unlock()
			if _, err := w.Write(line); err == nil {
				_ = rc.Flush()
			}
		}
		rn.run(ctx, subs)
		return
	}

	outs := make([]outcome, len(subs))
	rn.done = func(i int, o outcome) {
		h.metrics.sub(o.result)
		outs[i] = o
	}
	rn.run(ctx, subs)
	var buf bytes.Buffer
	buf.WriteString(`{"responses":[`)
	for i, o := range outs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(encodeResult(subs[i], i, o, h.keep))
	}
	buf.WriteString("]}\n")
	hdr.Set("Content-Type", mediaJSON)
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// limits are the handler's limits for the batch r.
func (h *Handler) limits(r *http.Request) limits {
	self := r.URL.Path
	if c := strings.TrimSuffix(self, "/"); c != "" {
		self = c
	}
	return limits{maxRequests: h.MaxRequests, maxBodySize: h.MaxBodySize, maxBatchSize: h.MaxBatchSize,
		methods: h.methods, prefixes: h.PathPrefixes, self: self}
}

// reject answers a batch refused as a whole.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, e *inputError) {
	h.metrics.batchRejected()
	problem.Write(w, batchProblem(e.status, e.title, e.detail, r.URL.Path))
}

// batchProblem is the problem document of a batch error.
func batchProblem(status int, title, detail, instance string) problem.Doc {
	return problem.Doc{Type: "/problems/batch", Title: title, Status: status, Detail: detail, Instance: instance}
}

// subRequestBuilder returns how sub-requests of the batch r are made: the
// batch's host, client address and TLS state, its credential and device
// hints, the sub-request's own allowed fields, its body.
func subRequestBuilder(r *http.Request) func(ctx context.Context, s *subRequest) *http.Request {
	inherited := make(http.Header)
	for _, name := range inheritedHeaders {
		if v := r.Header.Values(name); len(v) > 0 {
			inherited[name] = append([]string(nil), v...)
		}
	}
	for name, v := range r.Header {
		if strings.HasPrefix(name, clientHintPrefix) {
			inherited[name] = append([]string(nil), v...)
		}
	}
	return func(ctx context.Context, s *subRequest) *http.Request {
		hdr := inherited.Clone()
		for name, v := range s.header {
			hdr[name] = append([]string(nil), v...)
		}
		u := *s.url
		req := (&http.Request{
			Method:     s.method,
			URL:        &u,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     hdr,
			Host:       r.Host,
			RemoteAddr: r.RemoteAddr,
			RequestURI: u.RequestURI(),
			TLS:        r.TLS,
			Body:       http.NoBody,
		}).WithContext(ctx)
		if len(s.body) > 0 {
			req.Body = readCloser{bytes.NewReader(s.body)}
			req.ContentLength = int64(len(s.body))
		}
		return req
	}
}

// readCloser is a body with a no-op Close.
type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// acceptsNDJSON reports whether Accept asks for application/x-ndjson.
func acceptsNDJSON(accept []string) bool {
	for _, field := range accept {
		for _, member := range strings.Split(field, ",") {
			mt, params, _ := strings.Cut(member, ";")
			if strings.EqualFold(strings.TrimSpace(mt), mediaNDJSON) && contract.QValue(params) > 0 {
				return true
			}
		}
	}
	return false
}

// wireResponse is one sub-response as the client reads it.
type wireResponse struct {
	ID           string            `json:"id"`
	Index        int               `json:"index"`
	Status       int               `json:"status"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         json.RawMessage   `json:"body,omitempty"`
	BodyEncoding string            `json:"body_encoding,omitempty"`
}

// encodeResult is the JSON of sub-request i's outcome; keep is the
// handler's selection of sub-response fields (the sub-request's own is
// added).
func encodeResult(s *subRequest, i int, o outcome, keep headerSelection) []byte {
	hasBody := s.method != http.MethodHead && len(o.body) > 0
	wr := wireResponse{ID: s.id, Index: i, Status: o.status, Headers: keptHeaders(o.header, hasBody, keep.union(s.keep))}
	if hasBody {
		wr.Body, wr.BodyEncoding = encodeBody(o.header.Get("Content-Type"), o.body)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wr); err != nil { // cannot happen: every part is valid
		return []byte(`{"id":` + strconv.Quote(s.id) + `,"index":` + strconv.Itoa(i) + `,"status":500}`)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// encodeBody embeds a sub-response body: JSON as it is when it is JSON,
// other UTF-8 text as a string, anything else as base64 (encoding "base64").
func encodeBody(contentType string, body []byte) (json.RawMessage, string) {
	if jsonMedia(contentType) && json.Valid(body) {
		return body, ""
	}
	if utf8.Valid(body) {
		return jsonString(string(body)), ""
	}
	return jsonString(base64.StdEncoding.EncodeToString(body)), "base64"
}

// jsonString is s as a JSON string, without HTML escaping.
func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// jsonMedia reports whether a Content-Type is JSON (application/json or a
// +json type such as application/problem+json).
func jsonMedia(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == mediaJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
