package batch

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeBatch: any input either decodes into sub-requests that keep
// every limit, or is refused with an *inputError of 400, 413 or 422.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"requests":[{"id":"a","path":"/api/users/1/profile"}]}`,
		`{"requests":[{"id":"a","method":"POST","path":"/api/m?x=1","headers":{"Accept":"a/b"},"body":{"t":"x"}}]}`,
		`{"requests":[{"id":"a","method":"PUT","path":"/api/m","body":"text"},{"id":"b","path":"/api/batch"}]}`,
		`{"requests":[{"id":"a","path":"/api/%2e%2e/x"}]}`,
		`{"requests":[]}`,
		`{"response_headers":["*","Date"],"requests":[{"id":"a","path":"/api/x","response_headers":["cache-status"]}]}`,
		`{"requests":[{"id":"a","path":"/api/x","response_headers":["Set-Cookie"]}]}`,
		`{"requests":[{"id":"a","path":"/api//x"}]} x`,
		`{`,
	} {
		f.Add(s)
	}
	lim := testLimits()
	f.Fuzz(func(t *testing.T, body string) {
		subs, err := decodeBatch(strings.NewReader(body), lim)
		if err != nil {
			var ie *inputError
			if !errors.As(err, &ie) {
				t.Fatalf("not an inputError: %v", err)
			}
			if ie.status != 400 && ie.status != 413 && ie.status != 422 {
				t.Fatalf("status %d", ie.status)
			}
			return
		}
		if len(subs) == 0 || len(subs) > lim.maxRequests {
			t.Fatalf("%d sub-requests", len(subs))
		}
		ids := map[string]bool{}
		for _, s := range subs {
			if ids[s.id] || s.id == "" {
				t.Fatalf("id %q", s.id)
			}
			ids[s.id] = true
			if !lim.methods[s.method] {
				t.Fatalf("method %q", s.method)
			}
			p := s.url.Path
			if !strings.HasPrefix(p, "/api/") || !clean(p) || p == "/api/batch" || p == "/api/batch/" {
				t.Fatalf("path %q", p)
			}
			if int64(len(s.body)) > lim.maxBodySize || (s.safe() && s.body != nil) {
				t.Fatalf("body %q on %s", s.body, s.method)
			}
			for name := range s.keep.names {
				if neverKept[name] || !validFieldName(name) {
					t.Fatalf("keeps %q", name)
				}
			}
			for name, v := range s.header {
				if !allowedHeader(name) || name == "Authorization" || !validFieldValue(v[0]) {
					t.Fatalf("header %q: %q", name, v)
				}
			}
		}
	})
}

// FuzzBatchBody: any body with any Content-Encoding either opens and
// decodes within max_batch_size, or is refused with an *inputError of
// 400, 413 or 415; reading never goes past the limit as sent.
func FuzzBatchBody(f *testing.F) {
	plain := `{"requests":[{"id":"a","path":"/api/users/1/profile"}]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(plain))
	_ = zw.Close()
	f.Add("gzip", gz.Bytes())
	f.Add("", []byte(plain))
	f.Add("zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00, 0x00})
	f.Add("br", []byte(plain))
	f.Add("gzip", gz.Bytes()[:12])
	lim := testLimits()
	f.Fuzz(func(t *testing.T, coding string, body []byte) {
		src := bytes.NewReader(body)
		r, closeBody, ie := openBatchBody(src, []string{coding}, lim.maxBatchSize)
		if ie == nil {
			_, err := decodeBatch(r, lim)
			closeBody()
			if err != nil && !errors.As(err, &ie) {
				t.Fatalf("not an inputError: %v", err)
			}
		}
		if ie != nil && ie.status != 400 && ie.status != 413 && ie.status != 415 && ie.status != 422 {
			t.Fatalf("status %d", ie.status)
		}
		if read := int64(len(body) - src.Len()); read > lim.maxBatchSize+1 {
			t.Fatalf("read %d bytes of the body, limit %d", read, lim.maxBatchSize)
		}
	})
}
