package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/spark-edge/spark/origin/store"
)

// eventLog is one user's kept events: seqs pruned+1 … pruned+len(events).
type eventLog struct {
	events []store.Event
	pruned int64 // the newest seq pruned (0: none)
}

// last is the user's newest seq; a nil log (no event yet) has 0.
func (l *eventLog) last() int64 {
	if l == nil {
		return 0
	}
	return l.pruned + int64(len(l.events))
}

// appendEvents numbers ps and appends them to their users' logs (caller
// holds mu for writing, inside the write they describe).
func (s *Store) appendEvents(ps []store.PendingEvent) []store.Event {
	if len(ps) == 0 {
		return nil
	}
	last := make(map[int64]int64, 2)
	for _, p := range ps {
		last[p.UserID] = s.logs[p.UserID].last()
	}
	evs := store.Sequence(ps, last, store.EventTime(s.tick()))
	for _, e := range evs {
		l := s.logs[e.UserID]
		if l == nil {
			l = &eventLog{}
			s.logs[e.UserID] = l
		}
		l.events = append(l.events, e)
	}
	return evs
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, id, since int64, limit int) (store.EventPage, error) {
	if err := ctx.Err(); err != nil {
		return store.EventPage{}, fmt.Errorf("memory: events of %d: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.logs[id]
	if l == nil {
		l = &eventLog{}
	}
	last := l.last()
	if since < l.pruned || since > last {
		return store.EventPage{}, fmt.Errorf("memory: events of %d (kept after %d): %w", id, l.pruned, &store.GoneError{Since: since, LastSeq: last})
	}
	from := since - l.pruned
	to := min(from+int64(max(limit, 1)), int64(len(l.events))) // as PostGIS: a limit below 1 is 1
	return store.EventPage{Events: slices.Clone(l.events[from:to]), LastSeq: last}, nil
}

// PruneEvents implements store.Store.
func (s *Store) PruneEvents(ctx context.Context, r store.Retention) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: prune events: %w", err)
	}
	cutoff := r.Cutoff()
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.logs {
		i := 0
		for int64(i) < int64(len(l.events))-r.KeepLast && l.events[i].At.Before(cutoff) {
			i++
		}
		if i > 0 {
			l.events = slices.Clone(l.events[i:])
			l.pruned += int64(i)
			n += int64(i)
		}
	}
	return n, nil
}
