package cache

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/spark-edge/spark/internal/contract"
)

// writeMode is what a fillWriter does with the final response.
type writeMode int

const (
	modePass    writeMode = iota // pass to the client
	modeStore                    // pass to the client and keep a copy to store
	modeHold                     // keep everything until finish (strong ETag to add)
	modeCapture                  // keep it from the client (a 304 or an error to replace)
)

// fillWriter sits between the next handler and the client. At the final
// status it asks onHeader what to do; it passes 1xx interim responses
// straight through, streams the body while keeping a bounded copy, and
// flushes when asked (server-sent events, long polls).
type fillWriter struct {
	w        http.ResponseWriter
	onHeader func(status int, h http.Header) writeMode
	limit    int

	mode        writeMode
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	overflow    bool // copy abandoned: body larger than limit
	written     int64
}

var errOverflow = errors.New("cache: response over the maximum entry size")

// Header is the client's response header.
func (f *fillWriter) Header() http.Header { return f.w.Header() }

// Unwrap lets http.ResponseController reach the client's writer.
func (f *fillWriter) Unwrap() http.ResponseWriter { return f.w }

// WriteHeader passes an interim (1xx) response on and decides, at the final
// status, what becomes of the response (onHeader).
func (f *fillWriter) WriteHeader(status int) {
	if f.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// 103 Early Hints and friends reach the client, without the
		// contract's fields (an interim response purges nothing).
		h := f.w.Header()
		delete(h, contract.CacheTags)
		delete(h, contract.DenyUsers)
		delete(h, contract.SparkPurge)
		f.w.WriteHeader(status)
		return
	}
	f.wroteHeader = true
	f.status = status
	f.mode = f.onHeader(status, f.w.Header())
	if f.mode == modeStore || f.mode == modeHold {
		if cl, err := strconv.ParseInt(f.w.Header().Get("Content-Length"), 10, 64); err == nil && cl > int64(f.limit) {
			f.stopCopy()
		}
	}
	if f.mode == modePass || f.mode == modeStore {
		f.w.WriteHeader(status)
	}
}

// stopCopy abandons the stored copy, writing out anything held.
func (f *fillWriter) stopCopy() {
	f.overflow = true
	if f.mode == modeHold {
		f.mode = modeStore
		f.w.WriteHeader(f.status)
		if f.buf.Len() > 0 {
			_, _ = f.w.Write(f.buf.Bytes())
		}
	}
	f.mode = modePass
	f.buf = bytes.Buffer{}
}

// Write sends p on, keeps it, or both, as the mode says.
func (f *fillWriter) Write(p []byte) (int, error) {
	if !f.wroteHeader {
		f.WriteHeader(http.StatusOK)
	}
	f.written += int64(len(p))
	switch f.mode {
	case modePass:
		return f.w.Write(p)
	case modeStore:
		if f.buf.Len()+len(p) > f.limit {
			f.stopCopy()
		} else {
			f.buf.Write(p)
		}
		return f.w.Write(p)
	case modeHold:
		if f.buf.Len()+len(p) > f.limit {
			f.stopCopy()
			return f.w.Write(p)
		}
		return f.buf.Write(p)
	default: // modeCapture
		if f.buf.Len()+len(p) <= f.limit {
			f.buf.Write(p)
		}
		return len(p), nil
	}
}

// ReadFrom keeps io.Copy going through Write, so the copy is kept.
func (f *fillWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{f}, r)
}

type writerOnly struct{ io.Writer }

// FlushError flushes what the client has been sent so far.
func (f *fillWriter) FlushError() error {
	if !f.wroteHeader {
		return nil
	}
	// Hold mode needs the whole body before the header (the generated ETag
	// is its hash), so a flush waits; the copy is bounded by the entry limit,
	// past which stopCopy streams it. reverse_proxy flushes every write of
	// a response without Content-Length: abandoning the copy here made every
	// such response under an etag rule uncacheable.
	if f.mode == modeHold || f.mode == modeCapture {
		return nil
	}
	return http.NewResponseController(f.w).Flush()
}

// Flush implements http.Flusher.
func (f *fillWriter) Flush() { _ = f.FlushError() }

// body returns the complete copy, or false when there is none: the copy was
// abandoned or the body is shorter than its Content-Length.
func (f *fillWriter) body() ([]byte, bool) {
	if f.overflow || !f.wroteHeader {
		return nil, false
	}
	if cl, err := strconv.ParseInt(f.w.Header().Get("Content-Length"), 10, 64); err == nil && cl != f.written {
		return nil, false
	}
	return f.buf.Bytes(), true
}

// discardWriter is the client of a background fill: nobody.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
