package eventbus

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// respReader reads the replies a Redis connection in subscribed mode sends
// (RESP2): arrays of bulk strings and integers, simple strings, errors.
// Lines and bulk strings that fit the buffer are read in place, so a
// message costs no allocation before the payload is copied for the handler.
type respReader struct {
	r *bufio.Reader
}

// maxBulk bounds a bulk string the reader keeps, far above any message
// the bus carries (payloads are at most MaxPayload); a longer one is read
// past and dropped, so a stray huge message costs no memory.
const maxBulk = 4 * MaxPayload

// line reads one line ending in CRLF and returns it without the CRLF. The
// slice is valid until the next read.
func (r respReader) line() ([]byte, error) {
	l, err := r.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("resp: line too long")
		}
		return nil, err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("resp: bad line %q", l)
	}
	return l[:len(l)-2], nil
}

// arrayLen reads an array header and returns its length; for a reply that
// is not an array it returns -1 and the reply's line (an error, a status,
// an integer; a bulk string's header).
func (r respReader) arrayLen() (int, []byte, error) {
	l, err := r.line()
	if err != nil {
		return 0, nil, err
	}
	if l[0] != '*' {
		return -1, l, nil
	}
	n, ok := parseLen(l[1:])
	if !ok {
		return 0, nil, fmt.Errorf("resp: bad array header %q", l)
	}
	return n, nil, nil
}

// bulk reads a bulk string whose header is hdr (read by the caller when
// nil) and passes its bytes to use. The slice is valid only during the
// call unless owned is true (a string longer than the buffer, read into
// memory of its own). A null, or a string over maxBulk, passes nil.
func (r respReader) bulk(hdr []byte, use func(b []byte, owned bool) error) error {
	if hdr == nil {
		var err error
		if hdr, err = r.line(); err != nil {
			return err
		}
	}
	if hdr[0] != '$' {
		return fmt.Errorf("resp: want a bulk string, got %q", hdr)
	}
	if string(hdr) == "$-1" { // a null: no bytes follow
		return use(nil, false)
	}
	n, ok := parseLen(hdr[1:])
	if !ok {
		return fmt.Errorf("resp: bad bulk header %q", hdr)
	}
	if n > maxBulk {
		if _, err := r.r.Discard(n + 2); err != nil {
			return unexpectedEOF(err)
		}
		return use(nil, false)
	}
	if n+2 <= r.r.Size() {
		b, err := r.r.Peek(n + 2)
		if err != nil {
			return unexpectedEOF(err)
		}
		if err := use(b[:n], false); err != nil {
			return err
		}
		_, err = r.r.Discard(n + 2)
		return err
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return unexpectedEOF(err)
	}
	return use(b[:n], true)
}

// skip reads and drops one reply of any kind.
func (r respReader) skip() error {
	n, l, err := r.arrayLen()
	if err != nil {
		return err
	}
	if n < 0 {
		if l[0] == '$' {
			return r.bulk(l, func([]byte, bool) error { return nil })
		}
		return nil
	}
	for range n {
		if err := r.skip(); err != nil {
			return err
		}
	}
	return nil
}

// parseLen parses a non-negative length; "-1" (a null array: no elements
// follow) is 0.
func parseLen(b []byte) (int, bool) {
	if string(b) == "-1" {
		return 0, true
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// respWriter writes commands as arrays of bulk strings.
type respWriter struct {
	w *bufio.Writer
}

// command writes one command whose arguments are head followed by args.
func (w respWriter) command(head string, args ...string) {
	w.header('*', len(args)+1)
	w.arg(head)
	for _, a := range args {
		w.arg(a)
	}
}

func (w respWriter) header(kind byte, n int) {
	var b [24]byte
	out := append(strconv.AppendInt(append(b[:0], kind), int64(n), 10), '\r', '\n')
	_, _ = w.w.Write(out)
}

func (w respWriter) arg(s string) {
	w.header('$', len(s))
	_, _ = w.w.WriteString(s)
	_, _ = w.w.WriteString("\r\n")
}
