package loadtest

// Building, sending and classifying one request of a flow.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

// execTemplate runs a scenario template against a virtual user's Vars.
func execTemplate(t *template.Template, v Vars) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

// do sends one request due at intended and measures it. ok is false when
// ctx was cancelled (the sample means nothing then).
func (r *run) do(ctx context.Context, vu *VU, ep *Endpoint, intended time.Time) (s Sample, ok bool) {
	s = Sample{Endpoint: ep.Name, Method: ep.Method, Intended: intended}
	req, err := r.build(ctx, vu, ep)
	if errors.Is(err, ErrSkip) {
		s.Skipped = true
		return s, true
	}
	if err != nil {
		s.ErrKind, s.Latency = ErrKindOther, time.Since(intended)
		return s, true
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req = req.WithContext(rctx)
	if req.ContentLength > 0 {
		s.BytesOut = req.ContentLength
	}
	sent := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return s, false
		}
		s.Latency, s.ErrKind = time.Since(intended), classify(err)
		return s, true
	}
	var body []byte
	var n int64
	if len(ep.Capture) > 0 || ep.Check != "" {
		body, err = io.ReadAll(resp.Body)
		n = int64(len(body))
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	s.Latency = time.Since(intended)
	r.traceRequest(vu, ep, req, resp, sent, body)
	s.Status, s.BytesIn = resp.StatusCode, n
	if !r.cfg.NoReadAfter {
		vu.SawReadAfter(resp.Header.Get(contract.ReadAfter))
	}
	s.Cache = ParseCacheStatus(resp.Header.Get("Cache-Status"))
	if err != nil {
		if ctx.Err() != nil {
			return s, false
		}
		s.ErrKind = classify(err)
		return s, true
	}
	if !expected(ep, resp.StatusCode) {
		switch {
		case resp.StatusCode >= 500:
			s.ErrKind = ErrKind5xx
		case resp.StatusCode >= 400:
			s.ErrKind = ErrKind4xx
		default:
			s.ErrKind = ErrKindUnexpected
		}
		return s, true
	}
	if (len(ep.Capture) > 0 || ep.Check != "") && resp.StatusCode/100 == 2 {
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gunzip(body); err != nil {
				s.ErrKind = ErrKindOther
				return s, true
			}
		}
		for name, path := range ep.Capture {
			if resp.StatusCode != http.StatusOK {
				break
			}
			vals, err := extract(body, path)
			if err != nil {
				s.ErrKind = ErrKindOther
				return s, true
			}
			vu.Set(name, vals)
		}
		if ep.Check != "" && r.ledger != nil {
			o := observed{user: vu.ID, req: req, sent: sent, acked: time.Now(), status: resp.StatusCode, header: resp.Header, body: body}
			if err := r.ledger.Observe(ep.Check, o); err != nil {
				s.ErrKind = ErrKindOther
			}
		}
	}
	return s, true
}

// gunzip decodes a gzip-encoded body.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return out, nil
}

// build makes the endpoint's request for a virtual user: its templates run
// against the user's Vars (ErrSkip when the user has nothing to send yet).
func (r *run) build(ctx context.Context, vu *VU, ep *Endpoint) (*http.Request, error) {
	v := Vars{vu: vu, zipf: r.zipf, ledger: r.ledger}
	path, err := execTemplate(ep.Path, v)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	var blen int
	if ep.BodyBytes != nil {
		body, blen = bytes.NewReader(ep.BodyBytes), len(ep.BodyBytes)
	}
	if ep.Body != nil {
		b, err := execTemplate(ep.Body, v)
		if err != nil {
			return nil, err
		}
		body, blen = strings.NewReader(b), len(b)
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("endpoint %s: path %q does not start with /", ep.Name, path)
	}
	req, err := http.NewRequestWithContext(ctx, ep.Method, r.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: build request: %w", ep.Name, err)
	}
	req.ContentLength = int64(blen)
	if !ep.Anonymous {
		req.Header.Set("Authorization", "Bearer "+vu.Token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "spark-loadtest/1")
	if p := vu.ReadAfter(); p != "" {
		// The app's read-your-writes: whichever origin answers reads
		// after this user's last write.
		req.Header.Set(contract.ReadAfter, p)
	}
	switch {
	case ep.BodyBytes != nil:
		req.Header.Set("Content-Type", "application/octet-stream") // headers: may say better
	case blen > 0:
		req.Header.Set("Content-Type", "application/json")
	}
	for h, t := range ep.Headers {
		val, err := execTemplate(t, v)
		if err != nil {
			return nil, err
		}
		if val != "" {
			req.Header.Set(h, val)
		}
	}
	return req, nil
}

// expected reports whether status is one the endpoint expects: its Expect
// list, or any 2xx and 304 without one.
func expected(ep *Endpoint, status int) bool {
	if len(ep.Expect) == 0 {
		return status/100 == 2 || status == http.StatusNotModified
	}
	return slices.Contains(ep.Expect, status)
}

// classify names the kind of a transport error.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrKindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return ErrKindConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ErrKindConnection
	}
	return ErrKindOther
}
