package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// Position is a point in the primary database's write history (for
// PostgreSQL a WAL position, an LSN): a read that must see a write may be
// served by a copy of the database only once the copy has applied the
// history up to the write's position. Zero is no position: any copy will do.
type Position uint64

// String formats p as PostgreSQL writes an LSN: two hexadecimal halves,
// "16/B374D848".
func (p Position) String() string {
	return strconv.FormatUint(uint64(p)>>32, 16) + "/" + strconv.FormatUint(uint64(p)&0xFFFFFFFF, 16)
}

// ParsePosition reads a position in PostgreSQL's LSN form ("16/B374D848":
// one to eight hexadecimal digits, a slash, one to eight more).
func ParsePosition(s string) (Position, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("position %q: want two hexadecimal halves separated by a slash, like 16/B374D848", s)
	}
	h, err := parseHalf(hi)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", s, err)
	}
	l, err := parseHalf(lo)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", s, err)
	}
	return Position(h<<32 | l), nil
}

func parseHalf(s string) (uint64, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, errors.New("each half has one to eight hexadecimal digits")
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, fmt.Errorf("%q is not a hexadecimal digit", c)
		}
	}
	return strconv.ParseUint(s, 16, 32)
}

// Session is one request's read-your-writes position: the position its
// reads must see (what the requester last wrote, as far as the request
// says) raised by the request's own writes. A store with replicas honours
// it on reads and raises it on writes; a store without ignores it. Safe
// for concurrent use.
type Session struct{ after atomic.Uint64 }

// NewSession returns a session whose reads must see position after.
func NewSession(after Position) *Session {
	s := new(Session)
	s.after.Store(uint64(after))
	return s
}

// After is the position the session's reads must see.
func (s *Session) After() Position {
	if s == nil {
		return 0
	}
	return Position(s.after.Load())
}

// Advance raises the session's position to p (a write's position); a
// lower p changes nothing. Nil-safe.
func (s *Session) Advance(p Position) {
	if s == nil {
		return
	}
	for {
		cur := s.after.Load()
		if uint64(p) <= cur || s.after.CompareAndSwap(cur, uint64(p)) {
			return
		}
	}
}

type sessionKey struct{}

// WithSession returns ctx carrying s: the store calls made with it read
// after s's position and advance it with their writes.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the session ctx carries, nil when none (a nil
// session reads after no position and ignores writes).
func SessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}
