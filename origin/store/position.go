package store

import (
	"context"
	"strconv"
	"sync/atomic"
)

// Position is a point in the primary database's write history (for
// PostgreSQL a WAL position, an LSN): a read that must see a write may be
// served by a copy of the database only once the copy has applied the
// history up to the write's position. Zero is no position: any copy will do.
type Position uint64

// String formats p as PostgreSQL writes an LSN: two hexadecimal halves,
// "16/B374D848" (contract.ParsePosition reads it back).
func (p Position) String() string {
	return strconv.FormatUint(uint64(p)>>32, 16) + "/" + strconv.FormatUint(uint64(p)&0xFFFFFFFF, 16)
}

// Session is one request's read-your-writes position: the position its
// reads must see (what the requester last wrote, as far as the request
// says) raised by the request's own writes. A store with replicas honours
// it on reads and raises it on writes; a store without ignores it. Safe
// for concurrent use.
type Session struct {
	after atomic.Uint64
	// replicaRead is 0 when no read of the request used a replica, else
	// one more than the lowest replay position such a read was made at.
	replicaRead atomic.Uint64
}

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

// Bound lowers the session's position to p when it is above (a position
// the primary has not reached: forged or from another database) and
// reports whether it did. Nil-safe.
func (s *Session) Bound(p Position) bool {
	if s == nil {
		return false
	}
	for {
		cur := s.after.Load()
		if cur <= uint64(p) {
			return false
		}
		if s.after.CompareAndSwap(cur, uint64(p)) {
			return true
		}
	}
}

// ReadReplica records that one of the request's reads used a replica that
// had replayed at least to p (0: a position not known). Nil-safe.
func (s *Session) ReadReplica(p Position) {
	if s == nil {
		return
	}
	v := uint64(p) + 1
	if v == 0 { // p is the largest position: keep it representable
		v--
	}
	for {
		cur := s.replicaRead.Load()
		if cur != 0 && cur <= v || s.replicaRead.CompareAndSwap(cur, v) {
			return
		}
	}
}

// ReplicaRead returns the lowest replay position a read of the request
// was made at on a replica, and false when every read used the primary:
// the request's data is at least as new as that position.
func (s *Session) ReplicaRead() (Position, bool) {
	if s == nil {
		return 0, false
	}
	v := s.replicaRead.Load()
	if v == 0 {
		return 0, false
	}
	return Position(v - 1), true
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
