package batch

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func mustSelect(t *testing.T, names ...string) headerSelection {
	t.Helper()
	sel, err := parseHeaderSelection(names)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// keptHeaders keeps the selected fields, Content-Type but application/json
// and Content-Encoding; never the connection, length, cookie or edge-only
// fields, even for "*".
func TestKeptHeaders(t *testing.T) {
	h := http.Header{
		"Content-Type": {"application/json"}, "Etag": {`"a1"`}, "Cache-Status": {"spark; hit"},
		"Date": {"Mon, 07 Dec 2026 18:50:24 GMT"}, "Via": {"1.1 Caddy"}, "Vary": {"Authorization", "Accept-Encoding"},
		"Set-Cookie": {"s=1"}, "Cache-Tags": {"profile:1"}, "Content-Length": {"12"}, "Connection": {"close"},
	}
	def := mustSelect(t, DefaultResponseHeaders...)
	for _, c := range []struct {
		name string
		h    http.Header
		body bool
		sel  headerSelection
		want map[string]string
	}{
		{"default", h, true, def, map[string]string{"Etag": `"a1"`}},
		{"default, the batch asks for Cache-Status", h, true, def.union(mustSelect(t, "cache-status")),
			map[string]string{"Etag": `"a1"`, "Cache-Status": "spark; hit"}},
		{"all", h, true, mustSelect(t, "*"), map[string]string{"Content-Type": "application/json", "Etag": `"a1"`,
			"Cache-Status": "spark; hit", "Date": "Mon, 07 Dec 2026 18:50:24 GMT", "Via": "1.1 Caddy", "Vary": "Authorization, Accept-Encoding"}},
		{"Content-Type named", h, true, mustSelect(t, "content-type"), map[string]string{"Content-Type": "application/json"}},
		{"nothing kept", http.Header{"Content-Type": {"application/json; charset=UTF-8"}, "Date": {"x"}}, true, def, nil},
		{"other JSON types are said", http.Header{"Content-Type": {"application/problem+json"}}, true, def,
			map[string]string{"Content-Type": "application/problem+json"}},
		{"other charsets are said", http.Header{"Content-Type": {"application/json; charset=latin1"}}, true, def,
			map[string]string{"Content-Type": "application/json; charset=latin1"}},
		{"text and its coding", http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"br"}}, true, headerSelection{},
			map[string]string{"Content-Type": "text/plain", "Content-Encoding": "br"}},
		{"a body without a type", http.Header{}, true, def, map[string]string{"Content-Type": octetStream}},
		{"no body, no type", http.Header{"Location": {"/api/x"}}, false, def, map[string]string{"Location": "/api/x"}},
	} {
		if got := keptHeaders(c.h, c.body, c.sel); !maps.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseHeaderSelectionErrors(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"set-cookie"}, "Set-Cookie is never kept"},
		{[]string{"ETag", "Spark-Purge"}, "Spark-Purge is never kept"},
		{[]string{"a b"}, `"a b" is not a field name`},
		{[]string{""}, `"" is not a field name`},
		{make([]string, maxHeaderNames+1), "at most"},
	} {
		if _, err := parseHeaderSelection(c.names); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.names, err, c.want)
		}
	}
}

// A batch's response_headers apply to every sub-request, a sub-request's
// only to itself; a bad one refuses the batch (422).
func TestDecodeResponseHeaders(t *testing.T) {
	subs, err := decodeBatch(strings.NewReader(`{"response_headers":["Date"],"requests":[
		{"id":"a","path":"/api/x","response_headers":["cache-status"]},
		{"id":"b","path":"/api/y"}]}`), testLimits())
	if err != nil {
		t.Fatal(err)
	}
	if a := subs[0].keep; !a.keeps("Date") || !a.keeps("Cache-Status") || a.keeps("Via") {
		t.Errorf("a keeps %v", a.names)
	}
	if b := subs[1].keep; !b.keeps("Date") || b.keeps("Cache-Status") {
		t.Errorf("b keeps %v", b.names)
	}
	for _, body := range []string{
		`{"response_headers":["Set-Cookie"],"requests":[{"id":"a","path":"/api/x"}]}`,
		`{"requests":[{"id":"a","path":"/api/x","response_headers":["Cache-Tags"]}]}`,
		`{"requests":[{"id":"a","path":"/api/x","response_headers":"Date"}]}`,
	} {
		_, err := decodeBatch(strings.NewReader(body), testLimits())
		if ie, ok := err.(*inputError); !ok || ie.status/100 != 4 {
			t.Errorf("%s: %v, want a refusal", body, err)
		}
	}
}

// Through Caddy: by default a sub-response keeps what an app acts on
// (ETag here) and leaves out the hop's fields and application/json; the
// batch or a sub-request asks for more; "*" gets every field but the
// edge-only ones; the configured set replaces the default.
func TestBatchResponseHeaders(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 4)
	p := sub{ID: "p", Path: "/api/users/1/profile"}
	txt := sub{ID: "t", Path: "/api/text"}
	res := e.batchOK(tok, p, txt)
	if want := map[string]string{"Etag": `"p1"`}; !maps.Equal(res[0].Headers, want) {
		t.Errorf("default: %v, want %v", res[0].Headers, want)
	}
	if want := map[string]string{"Content-Type": "text/plain; charset=utf-8"}; !maps.Equal(res[1].Headers, want) {
		t.Errorf("text: %v, want %v", res[1].Headers, want)
	}
	if field(t, res[0].Body, "path") != p.Path {
		t.Errorf("body %s", res[0].Body)
	}

	r := e.do(http.MethodPost, "/api/batch", `{"response_headers":["*"],"requests":[{"id":"p","path":"/api/users/1/profile"}]}`,
		"Content-Type", "application/json", "Authorization", "Bearer "+tok)
	all := decodeResponses(t, r.Status, r.Body)[0].Headers
	for _, name := range []string{"Cache-Status", "Cache-Control", "Content-Type", "Etag", "Via"} {
		if all[name] == "" {
			t.Errorf("*: no %s in %v", name, all)
		}
	}
	for _, name := range []string{"Cache-Tags", "Content-Length", "Server"} {
		if _, ok := all[name]; ok {
			t.Errorf("*: %s reached the client: %v", name, all)
		}
	}
	r = e.do(http.MethodPost, "/api/batch", `{"response_headers":["Set-Cookie"],"requests":[{"id":"p","path":"/api/users/1/profile"}]}`,
		"Content-Type", "application/json", "Authorization", "Bearer "+tok)
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "Set-Cookie is never kept") {
		t.Errorf("Set-Cookie asked for: %d %s", r.Status, r.Body)
	}

	e2 := startEdge(t, defaultBatchBlock+"\n\t\t\tresponse_headers Cache-Status")
	res = e2.batchOK(tok, p)
	if h := res[0].Headers; len(h) != 1 || !strings.HasPrefix(h["Cache-Status"], "spark;") {
		t.Errorf("configured Cache-Status only: %v", h)
	}
}

func decodeResponses(t *testing.T, status int, body string) []subResponse {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("batch: %d %s", status, body)
	}
	var out struct {
		Responses []subResponse `json:"responses"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return out.Responses
}

func gzipped(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// Through Caddy: a gzip or zstd batch body is decoded; max_batch_size
// bounds it decoded (413); another coding is a 415 naming those accepted;
// a body that does not decode is a 400; nothing runs on a refusal.
func TestBatchEncodedBody(t *testing.T) {
	e := startEdge(t, defaultBatchBlock)
	tok := token(t, 4)
	plain := []byte(batchBody(t, sub{ID: "p", Path: "/api/users/2/profile"}))
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zst := string(enc.EncodeAll(plain, nil))
	_ = enc.Close()
	for coding, body := range map[string]string{"gzip": gzipped(t, plain), "zstd": zst} {
		r := e.do(http.MethodPost, "/api/batch", body, "Content-Type", "application/json", "Content-Encoding", coding, "Authorization", "Bearer "+tok)
		if res := decodeResponses(t, r.Status, r.Body); res[0].Status != http.StatusOK || field(t, res[0].Body, "path") != "/api/users/2/profile" {
			t.Errorf("%s: %+v", coding, res[0])
		}
	}
	before := e.origin.totalHits()
	// defaultBatchBlock: max_batch_size 16KiB. 17 KiB of spaces compress
	// to little.
	bomb := gzipped(t, append(plain[:len(plain)-1], append(bytes.Repeat([]byte(" "), 17<<10), '}')...))
	for _, c := range []struct {
		name, coding, body string
		status             int
		detail             string
	}{
		{"decodes past max_batch_size", "gzip", bomb, http.StatusRequestEntityTooLarge, "larger than 16384"},
		{"another coding", "br", string(plain), http.StatusUnsupportedMediaType, "gzip, zstd"},
		{"two codings", "gzip, gzip", gzipped(t, []byte(gzipped(t, plain))), http.StatusUnsupportedMediaType, "gzip, zstd"},
		{"not gzip", "gzip", string(plain), http.StatusBadRequest, "does not decode as gzip"},
		{"cut short", "gzip", gzipped(t, plain)[:20], http.StatusBadRequest, "reading the body"},
		{"not zstd", "zstd", string(plain), http.StatusBadRequest, "zstd"},
	} {
		r := e.do(http.MethodPost, "/api/batch", c.body, "Content-Type", "application/json", "Content-Encoding", c.coding, "Authorization", "Bearer "+tok)
		if r.Status != c.status || !strings.Contains(r.Body, c.detail) || r.Header.Get("Content-Type") != mediaProblem {
			t.Errorf("%s: %d %q %s, want %d with %q", c.name, r.Status, r.Header.Get("Content-Type"), r.Body, c.status, c.detail)
		}
		if c.status == http.StatusUnsupportedMediaType && r.Header.Get("Accept-Encoding") != requestCodings {
			t.Errorf("%s: Accept-Encoding %q", c.name, r.Header.Get("Accept-Encoding"))
		}
	}
	if n := e.origin.totalHits() - before; n != 0 {
		t.Errorf("refused batches reached the origin %d times", n)
	}
}

// openBatchBody reads at most the limit of what was sent, so a stream
// that decodes to nothing is not read without end.
func TestOpenBatchBodyRawLimit(t *testing.T) {
	// Empty stored deflate blocks decode to nothing.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for range 4096 {
		_ = zw.Flush()
	}
	_ = zw.Close()
	r, closeBody, ie := openBatchBody(bytes.NewReader(buf.Bytes()), []string{"gzip"}, 1024)
	if ie != nil {
		t.Fatal(ie)
	}
	defer closeBody()
	_, err := decodeBatch(r, limits{maxBatchSize: 1 << 20})
	if ie, ok := err.(*inputError); !ok || ie.status != http.StatusRequestEntityTooLarge {
		t.Errorf("%d bytes of empty blocks: %v, want 413", buf.Len(), err)
	}
}
