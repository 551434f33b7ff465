package batch

import (
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
)

// DefaultResponseHeaders are the sub-response fields a batch answer keeps
// unless configured (response_headers) or asked for: those an app acts on
// (revalidation, redirects, back-off, auth challenges), not those that
// describe the hop (Date, Via, Age, Cache-Status, Vary, Cache-Control).
// Content-Type and Content-Encoding are always kept (they say what the
// body is); Content-Type application/json is left out (see keptHeaders).
var DefaultResponseHeaders = []string{"ETag", "Last-Modified", "Location", "Content-Location",
	"Retry-After", "WWW-Authenticate", "Allow", "Link"}

// allResponseHeaders is the response_headers value that keeps every field.
const allResponseHeaders = "*"

// maxHeaderNames bounds the field names one selection may list.
const maxHeaderNames = 64

// neverKept are the response fields a sub-response never carries, whatever
// is asked: connection-level ones, the length (the body is re-encoded),
// cookies (the API speaks bearer tokens), and the contract's edge-only
// fields.
var neverKept = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Proxy-Connection": true, "Content-Length": true, "Set-Cookie": true,
	"Server": true, "Alt-Svc": true,
	contract.CacheTags: true, contract.SparkPurge: true, contract.DenyUsers: true, contract.SparkRefresh: true,
}

// headerSelection is a set of sub-response fields to keep: named ones
// (canonical), or all.
type headerSelection struct {
	all   bool
	names map[string]bool
}

// parseHeaderSelection checks field names (any case; "*" is every field)
// and returns them as a selection. A name that is not a field name, or one
// that is never kept, is an error naming it.
func parseHeaderSelection(names []string) (headerSelection, error) {
	var sel headerSelection
	if len(names) > maxHeaderNames {
		return sel, fmt.Errorf("%d field names: at most %d", len(names), maxHeaderNames)
	}
	for _, n := range names {
		if n == allResponseHeaders {
			sel.all = true
			continue
		}
		if !validFieldName(n) || len(n) > 128 {
			return sel, fmt.Errorf("%q is not a field name", truncate(n))
		}
		cn := textproto.CanonicalMIMEHeaderKey(n)
		if neverKept[cn] {
			return sel, fmt.Errorf("%s is never kept in a batch answer", cn)
		}
		if sel.names == nil {
			sel.names = make(map[string]bool, len(names))
		}
		sel.names[cn] = true
	}
	return sel, nil
}

// union is the fields kept by either selection.
func (sel headerSelection) union(o headerSelection) headerSelection {
	if o.all || len(o.names) == 0 {
		sel.all = sel.all || o.all
		return sel
	}
	if sel.all || len(sel.names) == 0 {
		o.all = o.all || sel.all
		return o
	}
	u := headerSelection{names: make(map[string]bool, len(sel.names)+len(o.names))}
	for n := range sel.names {
		u.names[n] = true
	}
	for n := range o.names {
		u.names[n] = true
	}
	return u
}

// keeps reports whether the canonical field name is selected.
func (sel headerSelection) keeps(name string) bool {
	return sel.all || sel.names[name]
}

// octetStream labels a body its route sent without a Content-Type, since
// a missing Content-Type in a batch answer means application/json.
const octetStream = "application/octet-stream"

// keptHeaders are the fields of a sub-response's header that go into the
// batch answer (each once, several values joined with ", "): those sel
// keeps, Content-Type and Content-Encoding, never the neverKept ones.
// Content-Type application/json (alone or with charset=utf-8), the API's
// own type, is left out unless sel keeps Content-Type: a sub-response
// without Content-Type is JSON. A
// body sent without a Content-Type is labelled application/octet-stream.
// It returns nil when nothing is kept.
func keptHeaders(h http.Header, hasBody bool, sel headerSelection) map[string]string {
	var out map[string]string
	for name, v := range h {
		if len(v) == 0 || neverKept[name] {
			continue
		}
		switch {
		case name == "Content-Type":
			if plainJSON(v[0]) && !sel.keeps(name) {
				continue
			}
		case name == "Content-Encoding", sel.keeps(name):
		default:
			continue
		}
		if out == nil {
			out = make(map[string]string, 4)
		}
		out[name] = strings.Join(v, ", ")
	}
	if hasBody && len(h.Values("Content-Type")) == 0 {
		if out == nil {
			out = make(map[string]string, 1)
		}
		out["Content-Type"] = octetStream
	}
	return out
}

// plainJSON reports whether a Content-Type is application/json with no
// parameter but charset=utf-8: what a batch answer leaves unsaid.
func plainJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != mediaJSON {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}
