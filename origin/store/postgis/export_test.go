package postgis

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin/store"
)

// PurgeUserState drops the user's cached state everywhere, as a write by
// another origin would (tests use it to make loads race writes).
func (s *Store) PurgeUserState(ctx context.Context, id int64) {
	if s.shared != nil {
		s.shared.PurgeTags(ctx, userTag(id))
	}
}

// UserStateExpires returns when the user's cached state expires (zero when
// none is cached).
func (s *Store) UserStateExpires(ctx context.Context, id int64) time.Time {
	if e, ok := s.shared.GetEntry(ctx, userKey(id)); ok {
		return e.Expires
	}
	return time.Time{}
}

// SuggestionsSQL returns the suggestion query (for EXPLAIN).
func SuggestionsSQL() string { return suggestionsSQL }

// LockHeadsOfConversationsSQL returns the statement locking the event
// heads of conversations' participants (for EXPLAIN).
func LockHeadsOfConversationsSQL() string { return lockHeadsOfConversations }

// Primary is the primary pool, for the SQL a test runs itself.
func (s *Store) Primary() *pgxpool.Pool { return s.primary }

// SendBatchOnce runs SendMessages' transaction once, without trying each
// draft alone when it fails, and returns its error (tests of lock order).
func (s *Store) SendBatchOnce(ctx context.Context, drafts []store.MessageDraft) ([]store.SendResult, error) {
	out := make([]store.SendResult, len(drafts))
	err := s.sendBatch(ctx, drafts, out)
	return out, err
}

// SetMaxTrackedWrites lowers how many written objects the replica router
// tracks before folding them into one floor (tests of the fold).
func (s *Store) SetMaxTrackedWrites(n int) {
	s.reads.mu.Lock()
	s.reads.maxTracked = n
	s.reads.mu.Unlock()
}
