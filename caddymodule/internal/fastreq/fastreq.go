// Package fastreq is a deliberately narrow HTTP/1.1 request parser for the
// edge's listener-level fast path. It accepts only the plainest requests
// (GET or HEAD, an origin-form target of a conservative character set,
// HTTP/1.1, a short list of known header fields each at most once, no
// body) and reports everything else as Unusual, so that the caller hands
// the bytes to net/http untouched. It never accepts what net/http's
// http.ReadRequest rejects (FuzzFastPathParser checks this against
// net/http), and it allocates nothing: a Request points into the parsed
// bytes.
package fastreq

import "strings"

// Result says what Parse made of the bytes.
type Result int

const (
	// NeedMore: the bytes are a plain request so far but incomplete.
	NeedMore Result = iota
	// Complete: one whole plain request; Parse's n is its length.
	Complete
	// Unusual: not a request this parser accepts; hand it to net/http.
	Unusual
)

// MaxRequest is the longest request (request line and header) Parse
// accepts; a longer one is Unusual.
const MaxRequest = 4096

// maxTarget bounds the request target.
const maxTarget = 2048

// Field bits of the header fields Parse accepts, each at most once.
const (
	fieldHost = 1 << iota
	fieldUserAgent
	fieldAccept
	fieldAcceptEncoding
	fieldAcceptLanguage
	fieldConnection
	fieldIfNoneMatch
)

// Request is a parsed request. Its slices point into the bytes given to
// Parse and are valid as long as they are.
type Request struct {
	// Head is true for HEAD, false for GET.
	Head bool
	// Path is the target's path, as sent (no percent-encoding, no dot
	// segments, no empty segments).
	Path []byte
	// Query is the target's query without '?', as sent; HasQuery says
	// whether there was a '?'.
	Query    []byte
	HasQuery bool
	// Host is the Host field's value.
	Host []byte
	// AcceptEncoding is the Accept-Encoding field's value (HasAcceptEncoding
	// says whether it was sent).
	AcceptEncoding    []byte
	HasAcceptEncoding bool
	// IfNoneMatch is the If-None-Match field's value (HasIfNoneMatch says
	// whether it was sent).
	IfNoneMatch    []byte
	HasIfNoneMatch bool
}

// Parse parses the request at the start of b. It returns Complete with the
// request's length, NeedMore when b holds the start of a plain request
// (read more and call again), or Unusual.
func Parse(b []byte, req *Request) (n int, res Result) {
	*req = Request{}
	if len(b) > MaxRequest {
		b = b[:MaxRequest]
	}
	// Request line.
	i := 0
	switch {
	case hasPrefix(b, "GET "):
		i = 4
	case hasPrefix(b, "HEAD "):
		i, req.Head = 5, true
	default:
		if len(b) < 5 && (strings.HasPrefix("GET ", string(b)) || strings.HasPrefix("HEAD ", string(b))) {
			return 0, more(b)
		}
		return 0, Unusual
	}
	start := i
	for i < len(b) && b[i] != ' ' {
		if !targetByte[b[i]] {
			return 0, Unusual
		}
		i++
	}
	if i-start > maxTarget {
		return 0, Unusual
	}
	if i == len(b) {
		return 0, more(b)
	}
	target := b[start:i]
	if !splitTarget(target, req) {
		return 0, Unusual
	}
	i++ // SP
	const version = "HTTP/1.1\r\n"
	for k := 0; k < len(version); k++ {
		if i+k == len(b) {
			return 0, more(b)
		}
		if b[i+k] != version[k] {
			return 0, Unusual
		}
	}
	i += len(version)
	// Header fields.
	seen := 0
	for {
		if i == len(b) {
			return 0, more(b)
		}
		if b[i] == '\r' {
			if i+1 == len(b) {
				return 0, more(b)
			}
			if b[i+1] != '\n' {
				return 0, Unusual
			}
			if seen&fieldHost == 0 {
				return 0, Unusual
			}
			return i + 2, Complete
		}
		// Name: token characters, then ':' at once (no space before it;
		// a line starting with white space is obs-fold).
		ns := i
		for i < len(b) && nameByte[b[i]] {
			i++
		}
		if i == len(b) {
			return 0, more(b)
		}
		if b[i] != ':' || i == ns {
			return 0, Unusual
		}
		bit := fieldBit(b[ns:i])
		if bit == 0 || seen&bit != 0 {
			return 0, Unusual
		}
		seen |= bit
		i++
		// Value: optional white space, visible ASCII and inner white
		// space, CRLF.
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		vs := i
		for i < len(b) && valueByte[b[i]] {
			i++
		}
		if i == len(b) {
			return 0, more(b)
		}
		if b[i] != '\r' {
			return 0, Unusual
		}
		if i+1 == len(b) {
			return 0, more(b)
		}
		if b[i+1] != '\n' {
			return 0, Unusual
		}
		ve := i
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		v := b[vs:ve]
		i += 2
		switch bit {
		case fieldHost:
			if !validHost(v) {
				return 0, Unusual
			}
			req.Host = v
		case fieldAcceptEncoding:
			req.AcceptEncoding, req.HasAcceptEncoding = v, true
		case fieldIfNoneMatch:
			req.IfNoneMatch, req.HasIfNoneMatch = v, true
		case fieldConnection:
			if !equalFold(v, "keep-alive") {
				return 0, Unusual
			}
		}
	}
}

// more is NeedMore while b is within MaxRequest, else Unusual.
func more(b []byte) Result {
	if len(b) >= MaxRequest {
		return Unusual
	}
	return NeedMore
}

// splitTarget splits an origin-form target into path and query, refusing
// what a URL cleaner or percent-decoder could read differently: no '%' or
// '\\' in the path, no empty, "." or ".." segments.
func splitTarget(t []byte, req *Request) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	p := t
	for k, c := range t {
		if c == '?' {
			p, req.Query, req.HasQuery = t[:k], t[k+1:], true
			break
		}
	}
	seg := 0 // start of the current segment
	for k := 1; k <= len(p); k++ {
		if k == len(p) || p[k] == '/' {
			s := p[seg+1 : k]
			if k < len(p) && len(s) == 0 || len(s) == 1 && s[0] == '.' || len(s) == 2 && s[0] == '.' && s[1] == '.' {
				return false
			}
			seg = k
			continue
		}
		if !pathByte[p[k]] {
			return false
		}
	}
	req.Path = p
	return true
}

// validHost accepts a registered name or IPv4 address with an optional
// port, or a bracketed IPv6 address with one: letters, digits, '.', '-',
// ':', '[' and ']' only, not empty.
func validHost(v []byte) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for _, c := range v {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// fieldBit returns the bit of a header field Parse accepts, 0 for others.
func fieldBit(name []byte) int {
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			return fieldHost
		}
	case 6:
		if equalFold(name, "accept") {
			return fieldAccept
		}
	case 10:
		if equalFold(name, "user-agent") {
			return fieldUserAgent
		}
		if equalFold(name, "connection") {
			return fieldConnection
		}
	case 13:
		if equalFold(name, "if-none-match") {
			return fieldIfNoneMatch
		}
	case 15:
		if equalFold(name, "accept-encoding") {
			return fieldAcceptEncoding
		}
		if equalFold(name, "accept-language") {
			return fieldAcceptLanguage
		}
	}
	return 0
}

// equalFold compares ASCII b with lower-case s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// Byte classes.
var (
	// nameByte: field-name characters accepted (letters, digits, '-').
	nameByte = class("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
	// valueByte: visible ASCII, SP and HTAB.
	valueByte = func() (t [256]bool) {
		for c := 0x20; c < 0x7f; c++ {
			t[c] = true
		}
		t['\t'] = true
		return t
	}()
	// pathByte: unreserved and sub-delims, ':' and '@' (RFC 3986 pchar
	// without pct-encoded).
	pathByte = class("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@")
	// targetByte: path characters, '/', and the query's '?' and '%'.
	targetByte = class("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%")
	hostByte   = class("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
)

func class(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}
