// Package postgis is the Spark store on PostgreSQL 15 + PostGIS 3 through
// pgx/v5. Suggestions are nearest-first KNN on geography(Point,4326) with the
// age condition inside a partial GiST index and an anti-join on the swipes
// primary key; see shared/design/postgis.md for the measurements behind it.
package postgis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/tiered"
)

// Config selects the databases.
type Config struct {
	URL        string // primary: matching, swipes, location writes, chat writes
	ReplicaURL string // optional: profile reads and message history
	Pool       PoolConfig
	CellCache  CellCacheConfig // cell-candidate cache for suggestions
	// ReplayPollInterval is how often the replica's replay position is
	// read for read-your-writes routing (default
	// DefaultReplayPollInterval); unused without a replica.
	ReplayPollInterval time.Duration
}

// Store implements store.Store on PostGIS.
type Store struct {
	primary *pgxpool.Pool
	replica *pgxpool.Pool  // == primary when no replica
	reads   *replicaRouter // which of the two a replica-eligible read uses
	pool    PoolConfig
	cells   *geocache.CandidateCache // nil: exact KNN query only
	shared  *tiered.Cache            // the cells' store, also holding user states (nil with cells)
	userTTL time.Duration            // lifetime of a cached user state
	locks   *userLocks               // per-user serialisation of cached-state updates
	// Background reloads of user states near expiry (with the cell cache).
	refreshSem chan struct{}
	refreshing sync.Map // user id -> struct{}: reload running
	bg         sync.WaitGroup
	bgCtx      context.Context
	bgCancel   context.CancelFunc
	closers    []func() error // cell cache stores, closed by Close
	// margin draws the hysteresis margin of each location update.
	margin func() float64
}

var _ store.Store = (*Store)(nil)

// Open connects to the primary (and replica) and checks they answer.
func Open(ctx context.Context, c Config) (*Store, error) {
	if c.URL == "" {
		return nil, errors.New("postgis: empty database url")
	}
	pc := c.Pool.withDefaults()
	primary, err := newPool(ctx, c.URL, pc)
	if err != nil {
		return nil, err
	}
	s := &Store{primary: primary, replica: primary, pool: pc, locks: new(userLocks), margin: geocache.RandomHysteresisM}
	if c.ReplicaURL != "" {
		if s.replica, err = newPool(ctx, c.ReplicaURL, pc); err != nil {
			primary.Close()
			return nil, fmt.Errorf("postgis: replica: %w", err)
		}
	}
	s.reads = newReplicaRouter(s.primary, s.replica, c.ReplayPollInterval)
	if c.CellCache.Enabled {
		if err := s.newCellCache(c.CellCache); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close implements store.Store.
func (s *Store) Close() {
	for _, c := range s.closers {
		_ = c()
	}
	if s.reads != nil {
		s.reads.close()
	}
	if s.replica != s.primary {
		s.replica.Close()
	}
	s.primary.Close()
}

// Ping implements store.Store: the primary must answer. A replica that does
// not is no reason to stop serving (its reads fall back to the primary),
// so it is tried only to rest it: its reads skip it for a while.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.acquireCtx(ctx)
	defer cancel()
	if err := s.primary.Ping(ctx); err != nil {
		return fmt.Errorf("postgis: ping primary: %w", err)
	}
	if s.reads.hasReplica() {
		_ = s.reads.read(ctx, writeKey{}, func(db *pgxpool.Pool) error { return db.Ping(ctx) })
	}
	return nil
}

// acquireCtx bounds an operation by the acquire timeout plus the statement
// timeout unless the caller's deadline is sooner.
func (s *Store) acquireCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.pool.AcquireTimeout+s.pool.StatementTimeout)
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgis: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("postgis: %s: %w", what, err)
}
