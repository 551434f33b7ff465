// Package problem writes the RFC 9457 problem documents Spark's edge
// handlers refuse requests with, in the origin's shape (type, title,
// status, detail, instance) and never stored by a cache.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// MediaType is the problem document's Content-Type.
const MediaType = "application/problem+json"

// Doc is an RFC 9457 problem details object.
type Doc struct {
	// Type names the problem (a URI reference, "/problems/…" as the
	// origin's).
	Type string `json:"type"`
	// Title is the status text.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail says what the client should do.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
}

// JSON returns d as a problem+json body, ending in a newline as
// json.Encoder (the origin's) writes it.
func (d Doc) JSON() []byte {
	b, _ := json.Marshal(d) // strings and an int: cannot fail
	return append(b, '\n')
}

// Write answers d: its status, MediaType, Cache-Control no-store, the
// Content-Length and the body. Other fields (WWW-Authenticate) are the
// caller's, set before.
func Write(w http.ResponseWriter, d Doc) {
	body := d.JSON()
	h := w.Header()
	h.Set("Content-Type", MediaType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(d.Status)
	_, _ = w.Write(body)
}
