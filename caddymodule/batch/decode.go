package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// wireRequest is one sub-request as the client writes it.
type wireRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	// ResponseHeaders are sub-response fields kept for this one besides
	// the handler's and the batch's.
	ResponseHeaders []string `json:"response_headers"`
}

// wireBatch is the batch request body.
type wireBatch struct {
	Requests []wireRequest `json:"requests"`
	// ResponseHeaders are sub-response fields kept for every sub-request
	// besides the handler's.
	ResponseHeaders []string `json:"response_headers"`
}

// subRequest is a decoded, checked sub-request, ready to run.
type subRequest struct {
	id     string
	method string
	url    *url.URL // path and query only
	target string   // the request-target as given
	header http.Header
	body   []byte
	keep   headerSelection // sub-response fields asked for (batch's and own)
}

// safe reports whether the sub-request may run beside others.
func (s *subRequest) safe() bool {
	return s.method == http.MethodGet || s.method == http.MethodHead
}

// limits are what decodeBatch checks a batch against.
type limits struct {
	maxRequests  int
	maxBodySize  int64
	maxBatchSize int64
	methods      map[string]bool
	prefixes     []string
	self         string // the batch's own path, never a sub-request's
}

// maxIDLen and maxPathLen bound a sub-request's id and path.
const (
	maxIDLen   = 64
	maxPathLen = 2048
)

// inputError is a batch refused as a whole: its HTTP status and what is
// wrong, for the problem+json answer.
type inputError struct {
	status int
	title  string
	detail string
}

func (e *inputError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.title, e.detail) }

func badRequest(format string, a ...any) *inputError {
	return &inputError{status: http.StatusBadRequest, title: "Malformed batch", detail: fmt.Sprintf(format, a...)}
}

func tooLarge(format string, a ...any) *inputError {
	return &inputError{status: http.StatusRequestEntityTooLarge, title: "Batch too large", detail: fmt.Sprintf(format, a...)}
}

func unprocessable(format string, a ...any) *inputError {
	return &inputError{status: http.StatusUnprocessableEntity, title: "Invalid batch", detail: fmt.Sprintf(format, a...)}
}

// clientHeaders are the request fields a sub-request may set itself
// (canonical names); "Sec-Ch-" client hints are allowed by prefix.
var clientHeaders = map[string]bool{
	"Accept": true, "Accept-Language": true, "Content-Type": true,
	"If-None-Match": true, "If-Modified-Since": true, "If-Match": true, "If-Unmodified-Since": true,
	"Idempotency-Key": true,
	"Save-Data":       true, "Ect": true, "Downlink": true, "Rtt": true, "Dpr": true,
	"Width": true, "Viewport-Width": true, "Device-Memory": true,
}

// clientHintPrefix is the canonical prefix of the Sec-CH-* client hints.
const clientHintPrefix = "Sec-Ch-"

// allowedHeader reports whether a sub-request may set the canonical name.
func allowedHeader(name string) bool {
	return clientHeaders[name] || strings.HasPrefix(name, clientHintPrefix)
}

// decodeBatch reads and checks a whole batch body from r (at most
// lim.maxBatchSize bytes, decoded; see openBatchBody). Any problem refuses
// the batch as a whole with an *inputError: nothing of it may run.
func decodeBatch(r io.Reader, lim limits) ([]*subRequest, error) {
	raw, err := io.ReadAll(io.LimitReader(r, lim.maxBatchSize+1))
	tooBig := errors.Is(err, errBatchTooLarge) || errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded)
	if err != nil && !tooBig {
		return nil, badRequest("reading the body: %v", err)
	}
	if tooBig || int64(len(raw)) > lim.maxBatchSize {
		return nil, tooLarge("the batch body is larger than %d bytes", lim.maxBatchSize)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var wb wireBatch
	if err := dec.Decode(&wb); err != nil {
		return nil, badRequest("the body is not a batch: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("the body has data after the batch object")
	}
	if wb.Requests == nil {
		return nil, unprocessable(`"requests" is missing`)
	}
	if len(wb.Requests) == 0 {
		return nil, unprocessable(`"requests" is empty`)
	}
	if len(wb.Requests) > lim.maxRequests {
		return nil, unprocessable("%d sub-requests: at most %d", len(wb.Requests), lim.maxRequests)
	}
	batchKeep, err := parseHeaderSelection(wb.ResponseHeaders)
	if err != nil {
		return nil, unprocessable("response_headers: %v", err)
	}
	subs := make([]*subRequest, len(wb.Requests))
	ids := make(map[string]bool, len(wb.Requests))
	for i := range wb.Requests {
		s, err := checkRequest(&wb.Requests[i], lim)
		if err != nil {
			var ie *inputError
			if errors.As(err, &ie) {
				ie.detail = fmt.Sprintf("requests[%d]: %s", i, ie.detail)
			}
			return nil, err
		}
		if ids[s.id] {
			return nil, unprocessable("requests[%d]: id %q is used twice", i, s.id)
		}
		ids[s.id] = true
		s.keep = batchKeep.union(s.keep)
		subs[i] = s
	}
	return subs, nil
}

// checkRequest checks one sub-request and builds it.
func checkRequest(w *wireRequest, lim limits) (*subRequest, error) {
	if w.ID == "" {
		return nil, unprocessable("id is missing")
	}
	if len(w.ID) > maxIDLen || !printable(w.ID) {
		return nil, unprocessable("id must be 1 to %d printable characters", maxIDLen)
	}
	method := w.Method
	if method == "" {
		method = http.MethodGet
	}
	method = strings.ToUpper(method)
	if !lim.methods[method] {
		return nil, unprocessable("method %q is not allowed", truncate(w.Method))
	}
	u, err := checkPath(w.Path, lim)
	if err != nil {
		return nil, err
	}
	s := &subRequest{id: w.ID, method: method, url: u, target: w.Path, header: make(http.Header, len(w.Headers)+1)}
	for name, value := range w.Headers {
		cn := textproto.CanonicalMIMEHeaderKey(name)
		if !validFieldName(name) {
			return nil, unprocessable("header name %q is not valid", truncate(name))
		}
		if !allowedHeader(cn) {
			return nil, unprocessable("header %q may not be set in a sub-request", truncate(cn))
		}
		if !validFieldValue(value) {
			return nil, unprocessable("header %q has a value that is not valid", cn)
		}
		s.header.Set(cn, value)
	}
	body, isJSON, err := decodeBody(w.Body)
	if err != nil {
		return nil, err
	}
	if body != nil && s.safe() {
		return nil, unprocessable("a %s sub-request has no body", method)
	}
	if int64(len(body)) > lim.maxBodySize {
		return nil, tooLarge("the body is larger than %d bytes", lim.maxBodySize)
	}
	if isJSON && s.header.Get("Content-Type") == "" {
		s.header.Set("Content-Type", "application/json")
	}
	s.body = body
	if s.keep, err = parseHeaderSelection(w.ResponseHeaders); err != nil {
		return nil, unprocessable("response_headers: %v", err)
	}
	return s, nil
}

// checkPath checks a sub-request's path (with an optional query): absolute,
// clean, under an allowed prefix, not the batch itself.
func checkPath(p string, lim limits) (*url.URL, error) {
	if p == "" {
		return nil, unprocessable("path is missing")
	}
	if len(p) > maxPathLen {
		return nil, unprocessable("path is longer than %d bytes", maxPathLen)
	}
	if p[0] != '/' || strings.HasPrefix(p, "//") {
		return nil, unprocessable("path %q must start with a single /", truncate(p))
	}
	if !printable(p) || strings.ContainsAny(p, " #\\") {
		return nil, unprocessable("path %q has characters a path may not have", truncate(p))
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return nil, unprocessable("path %q does not parse", truncate(p))
	}
	dp := u.Path // decoded: what Caddy's matchers see
	if !printable(dp) || strings.Contains(dp, "\\") || !clean(dp) {
		return nil, unprocessable("path %q is not clean (no //, . or .. segments)", truncate(p))
	}
	if lim.self != "" && (strings.EqualFold(dp, lim.self) || strings.EqualFold(dp, lim.self+"/")) {
		return nil, unprocessable("path %q is the batch endpoint itself", truncate(p))
	}
	for _, prefix := range lim.prefixes {
		if strings.HasPrefix(dp, prefix) {
			return &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}, nil
		}
	}
	return nil, unprocessable("path %q is not under %s", truncate(p), strings.Join(lim.prefixes, " or "))
}

// clean reports whether p (absolute) has no empty, . or .. segments (a
// trailing slash is allowed).
func clean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// decodeBody turns a sub-request's JSON body into bytes: absent or null is
// no body, a JSON string is its text, anything else is the JSON itself.
func decodeBody(raw json.RawMessage) (body []byte, isJSON bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, unprocessable("body: %v", err)
		}
		return []byte(s), false, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, false, unprocessable("body: %v", err)
	}
	return buf.Bytes(), true, nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validFieldName reports whether s is an RFC 9110 token.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s may be a field value: no CR, LF, NUL
// or other controls but tab.
func validFieldValue(s string) bool {
	if len(s) > 8<<10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	for i := n; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
