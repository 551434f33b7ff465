package eventbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The origin stream's frames: one JSON object per line (NDJSON), several
// lines per WebSocket message.
//
//	edge → origin  {"op":"sub","id":7,"users":[1,2]}    subscribe; answered by {"ack":7}
//	               {"op":"unsub","id":8,"users":[2]}    unsubscribe; answered by {"ack":8}
//	               {"op":"pub","user":1,"payload":{…}}  publish (ephemeral: no "seq")
//	origin → edge  {"user":1,"seq":5,"payload":{…}}     a message ("seq" absent: ephemeral)
//	               {"ack":7}                            the sub/unsub with that id is in effect
//
// The ack is what lets an edge subscribe first and read the origin's log
// second without a gap: once Subscribe returns, every later publish
// reaches the edge.

// op is what an edge → origin frame asks for.
type op uint8

const (
	// opNone marks an origin → edge frame: a message or an ack.
	opNone op = iota
	opSub
	opUnsub
	opPub
	// opUnknown is an op this version does not know.
	opUnknown
)

var opNames = [...]string{opSub: "sub", opUnsub: "unsub", opPub: "pub"}

func parseOp(b []byte) op {
	switch string(b) {
	case "":
		return opNone
	case "sub":
		return opSub
	case "unsub":
		return opUnsub
	case "pub":
		return opPub
	}
	return opUnknown
}

// frame is one line of the origin stream, either way.
type frame struct {
	op op
	// id numbers a sub or unsub; the origin acks it (0: no ack wanted).
	id int64
	// ack is the id of the sub or unsub an origin → edge ack confirms.
	ack     int64
	user    int64
	seq     int64
	users   []int64
	payload []byte // raw JSON
}

// errUnknownOp is the decoding error of a well-formed frame whose op this
// version does not know: a newer peer's; the receiver may skip it.
var errUnknownOp = errors.New("eventbus: unknown op")

// check says whether a decoded frame is complete.
func (f *frame) check() error {
	switch f.op {
	case opUnknown:
		return errUnknownOp
	case opSub, opUnsub:
		return checkUsers(f.users)
	case opNone:
		if f.ack != 0 {
			return nil
		}
	}
	if f.user <= 0 || f.seq < 0 || len(f.payload) == 0 {
		return fmt.Errorf("eventbus: frame needs a positive user, a seq >= 0 and a payload (user %d, seq %d)", f.user, f.seq)
	}
	return nil
}

// appendFrame appends f as one line.
func appendFrame(b []byte, f *frame) []byte {
	switch {
	case f.op == opSub || f.op == opUnsub:
		b = append(append(append(b, `{"op":"`...), opNames[f.op]...), `","id":`...)
		b = append(strconv.AppendInt(b, f.id, 10), `,"users":[`...)
		for i, u := range f.users {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, u, 10)
		}
		return append(b, "]}\n"...)
	case f.op == opNone && f.ack != 0:
		return append(strconv.AppendInt(append(b, `{"ack":`...), f.ack, 10), "}\n"...)
	case f.op == opPub:
		b = append(b, `{"op":"pub","user":`...)
	default:
		b = append(b, `{"user":`...)
	}
	b = strconv.AppendInt(b, f.user, 10)
	if f.seq != 0 {
		b = strconv.AppendInt(append(b, `,"seq":`...), f.seq, 10)
	}
	return append(append(append(b, `,"payload":`...), f.payload...), "}\n"...)
}

// linePayload returns p in a form that fits inside one line: p itself when
// it is JSON without a newline, p compacted when it has newlines.
func linePayload(p []byte) ([]byte, error) {
	if !json.Valid(p) {
		return nil, errors.New("eventbus: payload is not JSON")
	}
	if bytes.IndexByte(p, '\n') < 0 {
		return p, nil
	}
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return nil, fmt.Errorf("eventbus: compact payload: %w", err)
	}
	return c.Bytes(), nil
}

// decodeFrame parses one line into f, reusing f's users slice; f.payload
// is a slice of line. Frames in the shape appendFrame writes take a fast
// path that allocates nothing; any other JSON is decoded by encoding/json,
// with the same result (FuzzDecodeFrame holds the two to it).
func decodeFrame(line []byte, f *frame) error {
	if !json.Valid(line) {
		return errors.New("eventbus: frame is not JSON")
	}
	users := f.users[:0]
	*f = frame{users: users}
	if !decodeFast(line, f) {
		*f = frame{users: users}
		if err := decodeStd(line, f); err != nil {
			return err
		}
	}
	return f.check()
}

// stdFrame is a frame for encoding/json.
type stdFrame struct {
	Op      string          `json:"op"`
	ID      int64           `json:"id"`
	Ack     int64           `json:"ack"`
	User    int64           `json:"user"`
	Seq     int64           `json:"seq"`
	Users   []int64         `json:"users"`
	Payload json.RawMessage `json:"payload"`
}

// decodeStd decodes line with encoding/json.
func decodeStd(line []byte, f *frame) error {
	s := stdFrame{Users: f.users}
	if err := json.Unmarshal(line, &s); err != nil {
		return fmt.Errorf("eventbus: decode frame: %w", err)
	}
	*f = frame{op: parseOp([]byte(s.Op)), id: s.ID, ack: s.Ack, user: s.User, seq: s.Seq, users: s.Users, payload: s.Payload}
	return nil
}

// frameKeys are the keys decodeFast knows; encoding/json matches keys case
// insensitively, so a key that only folds to one of these leaves the fast
// path.
var frameKeys = [...]string{"op", "id", "ack", "user", "seq", "users", "payload"}

// decodeFast decodes valid JSON in the common shape: an object whose known
// keys are spelled exactly and have plain values (no escapes, integers
// only, no nulls). It reports false when line needs encoding/json.
func decodeFast(line []byte, f *frame) bool {
	s := scanner{b: line}
	if s.ws() != '{' {
		return false
	}
	s.i++
	if s.ws() == '}' {
		return true
	}
	for {
		s.ws()
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		s.i++ // ':'
		s.ws()
		switch string(key) {
		case "op":
			var v []byte
			v, ok = s.plainString()
			f.op = parseOp(v)
		case "id":
			f.id, ok = s.int()
		case "ack":
			f.ack, ok = s.int()
		case "user":
			f.user, ok = s.int()
		case "seq":
			f.seq, ok = s.int()
		case "users":
			f.users, ok = s.ints(f.users[:0])
		case "payload":
			start := s.i
			s.skipValue()
			f.payload = line[start:s.i]
		default:
			for _, k := range frameKeys {
				if bytes.EqualFold(key, []byte(k)) {
					return false
				}
			}
			s.skipValue()
		}
		if !ok {
			return false
		}
		if s.ws() == '}' {
			return true
		}
		s.i++ // ','
	}
}

// scanner walks JSON already known to be valid.
type scanner struct {
	b []byte
	i int
}

// ws skips whitespace and returns the next byte (0 at the end).
func (s *scanner) ws() byte {
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// plainString reads a string without escapes and returns its contents.
func (s *scanner) plainString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			return nil, false
		case '"':
			s.i = j + 1
			return s.b[start:j], true
		}
	}
	return nil, false
}

// int reads an integer that fits an int64 (no fraction, no exponent).
func (s *scanner) int() (int64, bool) {
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var v uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(s.b[s.i]-'0')
	}
	if s.i == start || v > 1<<63 || (v == 1<<63 && !neg) {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		return int64(-v), true
	}
	return int64(v), true
}

// ints reads an array of integers, appending them to dst.
func (s *scanner) ints(dst []int64) ([]int64, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return dst, false
	}
	s.i++
	if s.ws() == ']' {
		s.i++
		return dst, true
	}
	for {
		s.ws()
		v, ok := s.int()
		if !ok {
			return dst, false
		}
		dst = append(dst, v)
		c := s.ws()
		s.i++
		if c == ']' {
			return dst, true
		}
	}
}

// skipValue moves past one value of any kind.
func (s *scanner) skipValue() {
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // a number, true, false or null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// skipString moves past a string, escapes included.
func (s *scanner) skipString() {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return
		}
	}
}
