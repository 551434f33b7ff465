package batch

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func testLimits() limits {
	h := &Handler{}
	h.setDefaults()
	return limits{maxRequests: 3, maxBodySize: 16, maxBatchSize: 1024, methods: h.methods, prefixes: []string{"/api/"}, self: "/api/batch"}
}

// A valid batch decodes into its sub-requests: method defaulted and upper
// cased, header names canonical, a JSON string body as its text, any other
// JSON compacted with Content-Type application/json, the query kept.
func TestDecodeBatch(t *testing.T) {
	body := `{"requests":[
		{"id":"a","path":"/api/users/1/profile?x=1&y=%20"},
		{"id":"b","method":"post","path":"/api/messages","headers":{"idempotency-key":"k1","sec-ch-ua":"x"},"body":{ "text" : "hi" }},
		{"id":"c","method":"PUT","path":"/api/photos/","headers":{"Content-Type":"text/plain"},"body":"raw"}
	]}`
	subs, err := decodeBatch(strings.NewReader(body), testLimits())
	if err != nil {
		t.Fatal(err)
	}
	if subs[0].method != "GET" || subs[0].url.Path != "/api/users/1/profile" || subs[0].url.RawQuery != "x=1&y=%20" || subs[0].body != nil {
		t.Errorf("a: %+v %+v", subs[0], subs[0].url)
	}
	b := subs[1]
	if b.method != "POST" || string(b.body) != `{"text":"hi"}` || b.header.Get("Content-Type") != "application/json" ||
		b.header.Get("Idempotency-Key") != "k1" || b.header.Get("Sec-Ch-Ua") != "x" || b.safe() {
		t.Errorf("b: %+v", b)
	}
	if c := subs[2]; string(c.body) != "raw" || c.header.Get("Content-Type") != "text/plain" {
		t.Errorf("c: %+v", c)
	}
}

// Every refusal is an *inputError with the status the README names.
func TestDecodeBatchRefusals(t *testing.T) {
	for _, c := range []struct {
		body   string
		status int
	}{
		{``, 400},
		{`[]`, 400},
		{`{"requests":{}}`, 400},
		{`{"requests":[{"id":1,"path":"/api/x"}]}`, 400},
		{`{"requests":[],"x":1}`, 400},
		{`{"requests":null}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a"},{"id":"b","path":"/api/b"},{"id":"c","path":"/api/c"},{"id":"d","path":"/api/d"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a","method":"POST","body":"0123456789abcdefg"}]}`, 413},
		{`{"requests":[{"id":"a","path":"/api/a","method":"POST","body":"` + strings.Repeat("x", 1100) + `"}]}`, 413},
		{`{"requests":[{"id":"a","path":"/api/batch/"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/./x"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/x/.."}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a%2f..%2f..%2fb"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a\u0000"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a#frag"}]}`, 422},
		{`{"requests":[{"id":"a","path":"api/a"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/apix"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a","method":"CONNECT"}]}`, 422},
		{`{"requests":[{"id":"a\n","path":"/api/a"}]}`, 422},
		{`{"requests":[{"id":"` + strings.Repeat("i", 65) + `","path":"/api/a"}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a","headers":{"Host":"evil"}}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a","headers":{"Bad Name":"1"}}]}`, 422},
		{`{"requests":[{"id":"a","path":"/api/a","headers":{"Accept":"x\u0000"}}]}`, 422},
		{`{"requests":[{"id":"a","method":"HEAD","path":"/api/a","body":{}}]}`, 422},
		{`{"requests":[{"id":"a","method":"POST","path":"/api/a","body":"\ud800"}]}`, 0}, // lone surrogate: decoded as U+FFFD, accepted
	} {
		_, err := decodeBatch(strings.NewReader(c.body), testLimits())
		if c.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		var ie *inputError
		if !errors.As(err, &ie) {
			t.Errorf("%.80s: %v, want a %d", c.body, err, c.status)
			continue
		}
		if ie.status != c.status || ie.detail == "" || ie.title == "" {
			t.Errorf("%.80s: %d %q, want %d", c.body, ie.status, ie.detail, c.status)
		}
	}
}

// A body at exactly the batch limit is read; a byte more is 413.
func TestDecodeBatchSizeBoundary(t *testing.T) {
	lim := testLimits()
	base := `{"requests":[{"id":"a","path":"/api/a"}]}`
	exact := base + strings.Repeat(" ", int(lim.maxBatchSize)-len(base))
	if _, err := decodeBatch(strings.NewReader(exact), lim); err != nil {
		t.Errorf("exactly the limit: %v", err)
	}
	var ie *inputError
	if _, err := decodeBatch(strings.NewReader(exact+" "), lim); !errors.As(err, &ie) || ie.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a byte over: %v", err)
	}
}

func TestAcceptsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/x-ndjson":                         true,
		"application/json, application/x-ndjson;q=0.5": true,
		"application/x-ndjson;q=0":                     false,
		"application/json":                             false,
		"":                                             false,
	} {
		if got := acceptsNDJSON([]string{accept}); got != want {
			t.Errorf("%q: %v", accept, got)
		}
	}
}

func TestEncodeBody(t *testing.T) {
	for _, c := range []struct {
		ct, body, want, enc string
	}{
		{"application/json", `{"a":1}`, `{"a":1}`, ""},
		{"application/problem+json", `{"a":1}`, `{"a":1}`, ""},
		{"application/json", `{"a":`, `"{\"a\":"`, ""},
		{"text/html", `<b>&</b>`, `"<b>&</b>"`, ""},
		{"image/png", "\xff\xd8", `"/9g="`, "base64"},
	} {
		got, enc := encodeBody(c.ct, []byte(c.body))
		if string(got) != c.want || enc != c.enc {
			t.Errorf("%s %q: %s %q", c.ct, c.body, got, enc)
		}
	}
}
