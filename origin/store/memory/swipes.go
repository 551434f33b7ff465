package memory

import (
	"context"
	"fmt"
	"sort"

	"github.com/spark-edge/spark/origin/store"
)

// Swipe implements store.Store.
func (s *Store) Swipe(ctx context.Context, id, target int64, d store.Direction) (store.SwipeResult, error) {
	if id == target {
		return store.SwipeResult{}, fmt.Errorf("memory: swipe on self: %w", store.ErrInvalid)
	}
	if !d.Valid() {
		return store.SwipeResult{}, fmt.Errorf("memory: swipe direction %q: %w", d, store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(id); err != nil {
		return store.SwipeResult{}, err
	}
	if _, err := s.get(target); err != nil {
		return store.SwipeResult{}, err
	}
	res := store.SwipeResult{Direction: d}
	if prev, ok := s.swipes[id][target]; ok {
		if prev != d {
			return store.SwipeResult{}, fmt.Errorf("memory: swipe %d->%d already %s: %w", id, target, prev, store.ErrConflict)
		}
	} else {
		if s.swipes[id] == nil {
			s.swipes[id] = make(map[int64]store.Direction)
		}
		s.swipes[id][target] = d
		res.Created = true
	}
	if mid, ok := s.pairMatch[pair(id, target)]; ok {
		m := s.matches[mid]
		if !m.ended {
			mm := m.Match
			mm.PeerID = target
			res.Match = &mm
		}
		return res, nil
	}
	back, ok := s.swipes[target][id]
	if !d.Positive() || !ok || !back.Positive() || s.blocked(id, target) {
		return res, nil
	}
	now := s.tick()
	s.nextMatch++
	s.nextConv++
	p := pair(id, target)
	m := &match{Match: store.Match{ID: s.nextMatch, UserA: p[0], UserB: p[1], ConversationID: s.nextConv, CreatedAt: now}}
	s.matches[m.ID] = m
	s.pairMatch[p] = m.ID
	s.convs[s.nextConv] = &conversation{id: s.nextConv, matchID: m.ID, a: p[0], b: p[1], createdAt: now,
		lastActivity: now, byClientID: make(map[string]int), lastRead: make(map[int64]int64)}
	mm := m.Match
	mm.PeerID = target
	res.Match = &mm
	res.Events = s.appendEvents(store.MatchEvents(m.Match))
	return res, nil
}

// ListMatches implements store.Store.
func (s *Store) ListMatches(ctx context.Context, id int64) ([]store.Match, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.Match{}
	for _, m := range s.matches {
		if m.ended || (m.UserA != id && m.UserB != id) {
			continue
		}
		mm := m.Match
		mm.PeerID = mm.Peer(id)
		out = append(out, mm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// Unmatch implements store.Store.
func (s *Store) Unmatch(ctx context.Context, id, matchID int64) (store.Match, []store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.matches[matchID]
	if !ok || m.ended || (m.UserA != id && m.UserB != id) {
		return store.Match{}, nil, fmt.Errorf("memory: unmatch %d: %w", matchID, store.ErrNotFound)
	}
	m.ended = true
	mm := m.Match
	mm.PeerID = mm.Peer(id)
	return mm, s.appendEvents(store.UnmatchEvents(m.Match)), nil
}
