package fastreq

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestParse checks what is accepted, what needs more bytes and what goes
// to net/http.
func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Result
	}{
		{"GET /a/b.json HTTP/1.1\r\nHost: x\r\n\r\n", Complete},
		{"HEAD /a?b=1&c=%20 HTTP/1.1\r\nhost: Example.com:8080\r\nAccept-Encoding: gzip, br\r\nConnection: Keep-Alive\r\n\r\n", Complete},
		{"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\nAccept-Language: en\r\nIf-None-Match: \"x\"\r\n\r\n", Complete},
		{"GET /a HTTP/1.1\r\nHost: x\r\n", NeedMore},
		{"GE", NeedMore},
		{"GET /a HTTP/1.", NeedMore},
		{"GET /a HTTP/1.1\r\nHo", NeedMore},
		{"GET /a HTTP/1.1\r\nHost: x\r\n\r", NeedMore},
		{"POST /a HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Unusual},
		{"GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a HTTP/1.0\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\n\r\n", Unusual},                                // no Host
		{"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", Unusual},          // duplicate Host
		{"GET /a HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n", Unusual},      // credential
		{"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\n\r\n", Unusual}, // credential
		{"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: a\r\n b\r\n\r\n", Unusual}, // obs-fold
		{"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\nHost: x\n\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Unusual},
		{"GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a//b HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a/./b HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a%2fb HTTP/1.1\r\nHost: x\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x/y\r\n\r\n", Unusual},
		{"GET /a HTTP/1.1\r\nHost: x\r\nCache-Control: no-cache\r\n\r\n", Unusual},
		{"\x16\x03\x01\x02\x00\x01", Unusual}, // TLS
		{"GET /" + strings.Repeat("a", MaxRequest) + " HTTP/1.1\r\n", Unusual},
	}
	for _, c := range cases {
		var req Request
		n, got := Parse([]byte(c.in), &req)
		if got != c.want {
			t.Errorf("Parse(%q) = %v, want %v", c.in, got, c.want)
		}
		if got == Complete && n != len(c.in) {
			t.Errorf("Parse(%q) length %d, want %d", c.in, n, len(c.in))
		}
	}
}

// TestParseFields checks the parts of an accepted request.
func TestParseFields(t *testing.T) {
	in := "HEAD /p/q?b=2&a=1 HTTP/1.1\r\nHOST: Ex.com:81 \r\naccept-encoding:gzip\r\nIf-None-Match: \"e\"\r\n\r\nGET /next"
	var req Request
	n, res := Parse([]byte(in), &req)
	if res != Complete || n != strings.Index(in, "GET /next") {
		t.Fatalf("Parse = %d, %v", n, res)
	}
	if !req.Head || string(req.Path) != "/p/q" || string(req.Query) != "b=2&a=1" || !req.HasQuery ||
		string(req.Host) != "Ex.com:81" || string(req.AcceptEncoding) != "gzip" || !req.HasAcceptEncoding ||
		string(req.IfNoneMatch) != `"e"` || !req.HasIfNoneMatch {
		t.Fatalf("Parse fields = %+v", req)
	}
}

// TestParseAllocates nothing.
func TestParseAllocates(t *testing.T) {
	b := []byte("GET /static/x.json?v=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept-Encoding: gzip\r\n\r\n")
	var req Request
	if a := testing.AllocsPerRun(100, func() { Parse(b, &req) }); a != 0 {
		t.Fatalf("Parse allocates %v times", a)
	}
}

// FuzzFastPathParser: whatever Parse accepts, net/http's ReadRequest accepts
// too, as the same request (method, path, query, host, the fields the fast
// path reads), and it ends where net/http's does.
func FuzzFastPathParser(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /a/b?c=d&e HTTP/1.1\r\nHost: a.b:1\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: [::1]:80\r\nUser-Agent: x y\r\nAccept: */*\r\nAccept-Language: en\r\nConnection: keep-alive\r\nIf-None-Match: W/\"1\"\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: a\r\n\tb\r\n\r\n",
		"GET /a?%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost:\r\n\r\n",
		"GET /a\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req Request
		n, res := Parse(b, &req)
		if res != Complete {
			return
		}
		br := bufio.NewReader(bytes.NewReader(b))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("Parse accepted %q, net/http refuses it: %v", b, err)
		}
		if consumed := len(b) - br.Buffered(); consumed != n {
			t.Fatalf("Parse took %d bytes of %q, net/http %d", n, b, consumed)
		}
		// The fast path lends net/http exactly these n bytes and nothing
		// after them until it has answered (take-back): net/http must
		// need no further byte to parse the request.
		if _, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(b[:n]), readPastRequest{}))); err != nil {
			t.Fatalf("net/http cannot read %q without the bytes after it: %v", b[:n], err)
		}
		want := http.MethodGet
		if req.Head {
			want = http.MethodHead
		}
		switch {
		case r.Method != want:
			t.Fatalf("%q: method %q, net/http %q", b, want, r.Method)
		case r.URL.EscapedPath() != string(req.Path) || r.URL.Path != string(req.Path):
			t.Fatalf("%q: path %q, net/http %q (escaped %q)", b, req.Path, r.URL.Path, r.URL.EscapedPath())
		case r.URL.RawQuery != string(req.Query) || r.URL.ForceQuery != (req.HasQuery && len(req.Query) == 0):
			t.Fatalf("%q: query %q, net/http %q", b, req.Query, r.URL.RawQuery)
		case r.Host != string(req.Host) || len(r.Header["Host"]) != 0:
			t.Fatalf("%q: host %q, net/http %q", b, req.Host, r.Host)
		case r.ContentLength != 0 || len(r.TransferEncoding) != 0 || r.Close || r.ProtoMinor != 1:
			t.Fatalf("%q: net/http sees a body or a close: %+v", b, r)
		case len(r.Header["Accept-Encoding"]) != boolInt(req.HasAcceptEncoding) || r.Header.Get("Accept-Encoding") != string(req.AcceptEncoding):
			t.Fatalf("%q: Accept-Encoding %q, net/http %q", b, req.AcceptEncoding, r.Header["Accept-Encoding"])
		case len(r.Header["If-None-Match"]) != boolInt(req.HasIfNoneMatch) || r.Header.Get("If-None-Match") != string(req.IfNoneMatch):
			t.Fatalf("%q: If-None-Match %q, net/http %q", b, req.IfNoneMatch, r.Header["If-None-Match"])
		}
		for name := range r.Header {
			switch name {
			case "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "If-None-Match":
			default:
				t.Fatalf("%q: net/http sees field %q the fast path does not know", b, name)
			}
		}
	})
}

// readPastRequest is what follows a request lent to net/http: reading it
// is an error.
type readPastRequest struct{}

func (readPastRequest) Read([]byte) (int, error) { return 0, errors.New("read past the request") }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
