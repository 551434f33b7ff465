package postgis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Replica routing defaults.
const (
	// DefaultReplicaRetryAfter is how long reads stay on the primary after
	// the replica failed to answer.
	DefaultReplicaRetryAfter = 5 * time.Second
	// DefaultReadYourWritesWindow is how long after a write the written
	// profile or conversation is read from the primary.
	DefaultReadYourWritesWindow = 10 * time.Second
)

// replicaRouter picks the pool a replica-eligible read uses. Two rules,
// one reason each:
//
//   - Fallback: a replica read that fails for want of a connection (refused,
//     reset, shut down, timed out) is retried on the primary, and the
//     replica is skipped for retryAfter. A replica outage costs the primary
//     some load, never a failed read.
//   - Read your writes: for window after a write to a profile or a
//     conversation, reads of it go to the primary. Streaming replication is
//     asynchronous; without this a writer could read back data older than
//     their own last write from a lagging replica.
//
// With no replica both rules are moot and every read uses the primary.
type replicaRouter struct {
	primary, replica *pgxpool.Pool
	retryAfter       time.Duration
	window           time.Duration
	now              func() time.Time

	downUntil atomic.Int64 // unix nanoseconds; reads go to the primary before it
	fallbacks atomic.Int64 // replica reads retried on the primary

	mu      sync.Mutex
	written map[writeKey]int64 // what was written -> unix nanoseconds its window ends
	pruneAt int64
}

// writeKey names what a write touched: a profile or a conversation.
type writeKey struct {
	kind byte // 'p' profile, 'c' conversation
	id   int64
}

func newReplicaRouter(primary, replica *pgxpool.Pool) *replicaRouter {
	return &replicaRouter{primary: primary, replica: replica, retryAfter: DefaultReplicaRetryAfter,
		window: DefaultReadYourWritesWindow, now: time.Now, written: map[writeKey]int64{}}
}

// hasReplica reports whether reads may go elsewhere than the primary.
func (r *replicaRouter) hasReplica() bool { return r.replica != r.primary }

// wrote records a write to k: its reads use the primary for the window.
func (r *replicaRouter) wrote(k writeKey) {
	if !r.hasReplica() {
		return
	}
	now := r.now().UnixNano()
	r.mu.Lock()
	r.written[k] = now + int64(r.window)
	if now >= r.pruneAt { // drop ended windows now and then, not on every write
		for key, end := range r.written {
			if end <= now {
				delete(r.written, key)
			}
		}
		r.pruneAt = now + int64(r.window)
	}
	r.mu.Unlock()
}

// read runs q on the replica unless k was written within the window or
// the replica is resting after a failure, falling back to the primary when
// the replica cannot be reached. q must be safe to run twice (a read).
func (r *replicaRouter) read(ctx context.Context, k writeKey, q func(*pgxpool.Pool) error) error {
	if !r.hasReplica() || r.recentlyWritten(k) || r.now().UnixNano() < r.downUntil.Load() {
		return q(r.primary)
	}
	err := q(r.replica)
	if err == nil || ctx.Err() != nil || !unreachable(err) {
		return err
	}
	r.downUntil.Store(r.now().Add(r.retryAfter).UnixNano())
	r.fallbacks.Add(1)
	return q(r.primary)
}

func (r *replicaRouter) recentlyWritten(k writeKey) bool {
	r.mu.Lock()
	end, ok := r.written[k]
	r.mu.Unlock()
	return ok && r.now().UnixNano() < end
}

// unreachable reports whether err means the server could not be used at
// all (no connection, connection lost, server shutting down or starting),
// as opposed to an answer such as no rows or a failed statement.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.SafeToRetry(err), pgconn.Timeout(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &pe):
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now (a replica starting up).
		return pe.Code[:2] == "08" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return false
}
