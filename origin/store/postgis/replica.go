package postgis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin/store"
)

// Replica routing defaults.
const (
	// DefaultReplicaRetryAfter is how long reads stay on the primary after
	// the replica failed to answer.
	DefaultReplicaRetryAfter = 5 * time.Second
	// DefaultReplayPollInterval is how often the replica's replay position
	// is read (one query by one goroutine, never by a read).
	DefaultReplayPollInterval = 50 * time.Millisecond
	// maxTrackedWrites bounds the objects whose last write's position is
	// kept while the replica has not replayed it; past it they are folded
	// into one position every read must see (see replicaRouter.wrote).
	maxTrackedWrites = 100_000
	// pendingPosition marks an object written whose position could not be
	// read yet: its reads use the primary until the poller resolves it.
	pendingPosition = math.MaxUint64
)

// replicaRouter picks the pool a replica-eligible read uses. Two rules,
// one reason each:
//
//   - Fallback: a replica read that fails for want of a connection (refused,
//     reset, shut down, timed out) is retried on the primary, and the
//     replica is skipped for retryAfter. A replica outage costs the primary
//     some load, never a failed read.
//   - Read your writes, by WAL position: streaming replication is
//     asynchronous, so a read goes to the replica only when the replica has
//     replayed the last write it must see: the last write to the object
//     through this origin (a profile or a conversation: the commit's
//     position, pg_current_wal_insert_lsn() after the commit) and the
//     position the request's store.Session carries (the requester's last
//     write through any origin, which the client echoes back). Otherwise
//     the primary answers. However far the replica lags, nobody reads data
//     older than their own last write.
//
// The replica's replay position (pg_last_wal_replay_lsn()) is read every
// poll interval by one goroutine and cached; a read compares two numbers and
// adds no round trip. A position that cannot be read counts as none: only
// reads that must see no write use the replica then. With no replica both
// rules are moot and every read uses the primary.
type replicaRouter struct {
	primary, replica *pgxpool.Pool
	retryAfter       time.Duration
	now              func() time.Time
	maxTracked       int // maxTrackedWrites; tests lower it

	downUntil atomic.Int64  // unix nanoseconds; reads go to the primary before it
	fallbacks atomic.Int64  // replica reads retried on the primary
	behind    atomic.Int64  // reads sent to the primary as the replica had not replayed their write
	replayed  atomic.Uint64 // the replica's replay position at the last poll; 0 unknown
	primaryAt atomic.Uint64 // the highest primary insert position read (polls, writes, bounds)
	lag       atomic.Int64  // primary minus replica position at the last poll, bytes; -1 unknown
	bounded   atomic.Int64  // requests whose Spark-Read-After was past the primary's position

	mu      sync.Mutex
	written map[writeKey]uint64 // object -> position of its last write the replica may not have replayed
	floor   uint64              // a position every read must see: tracked writes folded on overflow
	pending uint64              // count of marks of pendingPosition, to resolve them safely

	stop context.CancelFunc
	done chan struct{}
}

// writeKey names what a write touched: a profile or a conversation.
type writeKey struct {
	kind byte // 'p' profile, 'c' conversation
	id   int64
}

// newReplicaRouter routes between primary and replica (the same pool: no
// replica), polling the replica's replay position every poll interval
// until close.
func newReplicaRouter(primary, replica *pgxpool.Pool, poll time.Duration) *replicaRouter {
	r := &replicaRouter{primary: primary, replica: replica, retryAfter: DefaultReplicaRetryAfter,
		now: time.Now, maxTracked: maxTrackedWrites, written: map[writeKey]uint64{}, done: make(chan struct{})}
	r.lag.Store(-1)
	if !r.hasReplica() {
		close(r.done)
		r.stop = func() {}
		return r
	}
	if poll <= 0 {
		poll = DefaultReplayPollInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.pollReplay(ctx, poll)
	return r
}

// close stops the poller and waits for it.
func (r *replicaRouter) close() {
	r.stop()
	<-r.done
}

// hasReplica reports whether reads may go elsewhere than the primary.
func (r *replicaRouter) hasReplica() bool { return r.replica != r.primary }

// pollReplay refreshes the cached replay position every interval, drops
// the tracked writes the replica has replayed, and resolves pending ones.
func (r *replicaRouter) pollReplay(ctx context.Context, every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.pollOnce(ctx, every)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *replicaRouter) pollOnce(ctx context.Context, every time.Duration) {
	qctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
	defer cancel()
	if r.pendingMarks() > 0 {
		r.resolvePending(qctx)
	}
	// The primary's position first: the replica's, read after, is then
	// never ahead of it and the lag is never negative.
	primary, perr := currentPosition(qctx, r.primary)
	if perr == nil {
		r.sawPrimary(primary)
	}
	var lsn *int64
	var standby bool
	err := r.replica.QueryRow(qctx, `SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8`).Scan(&standby, &lsn)
	if err != nil || lsn == nil {
		// Unreachable, or not a standby (no replay position): reads that
		// must see a write use the primary until a position is read.
		r.replayed.Store(0)
		r.lag.Store(-1)
		if err == nil && !standby {
			// A server out of recovery (promoted, or the primary itself)
			// replays nothing and trails nothing.
			r.lag.Store(0)
		}
		return
	}
	if perr != nil {
		r.lag.Store(-1)
	} else {
		r.lag.Store(int64(uint64(primary) - min(uint64(*lsn), uint64(primary))))
	}
	if prev := r.replayed.Swap(uint64(*lsn)); uint64(*lsn) > prev {
		r.forgetReplayed(uint64(*lsn))
	}
}

// forgetReplayed drops the tracked writes at or before pos: the replica
// shows them.
func (r *replicaRouter) forgetReplayed(pos uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.written {
		if p <= pos {
			delete(r.written, k)
		}
	}
	if r.floor <= pos {
		r.floor = 0
	}
}

func (r *replicaRouter) pendingMarks() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// resolvePending gives the writes whose position could not be read the
// primary's position now, which is at or after theirs: the query starts
// after they were marked. Marks made while it runs wait for the next poll.
func (r *replicaRouter) resolvePending(ctx context.Context) {
	marks := r.pendingMarks()
	pos, err := currentPosition(ctx, r.primary)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != marks {
		return
	}
	for k, p := range r.written {
		if p == pendingPosition {
			r.written[k] = uint64(pos)
		}
	}
	if r.floor == pendingPosition {
		r.floor = uint64(pos)
	}
	r.pending = 0
}

// sawPrimary raises the highest primary position known to p.
func (r *replicaRouter) sawPrimary(p store.Position) {
	for {
		cur := r.primaryAt.Load()
		if uint64(p) <= cur || r.primaryAt.CompareAndSwap(cur, uint64(p)) {
			return
		}
	}
}

// currentPosition is the primary's WAL insert position: at or after the
// commit of every transaction that has returned.
func currentPosition(ctx context.Context, primary *pgxpool.Pool) (store.Position, error) {
	var lsn int64
	if err := primary.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8`).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("read the primary's WAL position: %w", err)
	}
	return store.Position(lsn), nil
}

// wrote records committed writes to keys: their reads, and the reads of
// the session ctx carries, use the primary until the replica has replayed
// the primary's position now (one query on the primary, after the commit).
// If that position cannot be read, the keys' reads use the primary until
// the poller reads one.
func (r *replicaRouter) wrote(ctx context.Context, keys ...writeKey) {
	if !r.hasReplica() || len(keys) == 0 {
		return
	}
	pos, err := currentPosition(ctx, r.primary)
	p := uint64(pos)
	if err != nil {
		p = pendingPosition
	} else {
		r.sawPrimary(pos)
		store.SessionFrom(ctx).Advance(pos)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p == pendingPosition {
		r.pending++
	}
	for _, k := range keys {
		if p > r.written[k] {
			r.written[k] = p
		}
	}
	if len(r.written) > r.maxTracked {
		// A replica this far behind: every read waits for the newest
		// write instead of each for its own, and the map starts again.
		for _, q := range r.written {
			r.floor = max(r.floor, q)
		}
		clear(r.written)
	}
}

// read runs q on the replica when it has replayed every write the read must
// see (see replicaRouter) and is not resting after a failure, and on the
// primary otherwise, falling back to the primary when the replica cannot be
// reached. q must be safe to run twice (a read).
func (r *replicaRouter) read(ctx context.Context, k writeKey, q func(*pgxpool.Pool) error) error {
	if !r.hasReplica() || r.now().UnixNano() < r.downUntil.Load() {
		return q(r.primary)
	}
	at := r.replayed.Load() // the replica has replayed at least this far
	if r.mustSee(ctx, k) > at {
		r.behind.Add(1)
		return q(r.primary)
	}
	err := q(r.replica)
	if err == nil || ctx.Err() != nil || !unreachable(err) {
		// What was read is as new as at, at least: the response says so
		// (Spark-Read-At), and an edge that heard of a later write to it
		// asks again rather than store it.
		store.SessionFrom(ctx).ReadReplica(store.Position(at))
		return err
	}
	r.downUntil.Store(r.now().Add(r.retryAfter).UnixNano())
	r.fallbacks.Add(1)
	return q(r.primary)
}

// mustSee is the position a read of k must see: k's last write through this
// origin, the session's, the overflow floor.
func (r *replicaRouter) mustSee(ctx context.Context, k writeKey) uint64 {
	sess := store.SessionFrom(ctx)
	need := uint64(sess.After())
	if need > r.primaryAt.Load() {
		need = r.bound(ctx, sess)
	}
	r.mu.Lock()
	need = max(need, r.written[k], r.floor)
	r.mu.Unlock()
	return need
}

// bound lowers a session position past the primary's last known one to
// the primary's current position, when it is past that too (a forged
// far-future Spark-Read-After, or one from another database), so that a
// client cannot send its reads to the primary forever. One query on the
// primary, only for positions newer than the poller's last read of it
// (written within the last poll interval through another origin, or
// forged). It returns the session's position.
func (r *replicaRouter) bound(ctx context.Context, sess *store.Session) uint64 {
	pos, err := currentPosition(ctx, r.primary)
	if err != nil {
		return uint64(sess.After()) // unknown: the read goes to the primary, as before
	}
	r.sawPrimary(pos)
	if sess.Bound(pos) {
		r.bounded.Add(1)
	}
	return uint64(sess.After())
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
