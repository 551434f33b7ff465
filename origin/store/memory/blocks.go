package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/spark-edge/spark/origin/store"
)

func (s *Store) blocked(a, b int64) bool {
	if _, ok := s.blocks[a][b]; ok {
		return true
	}
	_, ok := s.blocks[b][a]
	return ok
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, id, target int64) ([]store.Event, error) {
	if id == target {
		return nil, fmt.Errorf("memory: block self: %w", store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(target); err != nil {
		return nil, err
	}
	if s.blocks[id] == nil {
		s.blocks[id] = make(map[int64]struct{})
	}
	s.blocks[id][target] = struct{}{}
	if s.blockedBy[target] == nil {
		s.blockedBy[target] = make(map[int64]struct{})
	}
	s.blockedBy[target][id] = struct{}{}
	if mid, ok := s.pairMatch[pair(id, target)]; ok && !s.matches[mid].ended {
		m := s.matches[mid]
		m.ended = true
		return s.appendEvents(store.UnmatchEvents(m.Match)), nil
	}
	return nil, nil
}

// Blocked implements store.Store.
func (s *Store) Blocked(ctx context.Context, a, b int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory: blocked %d %d: %w", a, b, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.blocked(a, b), nil
}

// BlockedWith implements store.Store.
func (s *Store) BlockedWith(ctx context.Context, id int64, maxIDs int) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: blocked with %d: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]int64, 0, len(s.blocks[id])+len(s.blockedBy[id]))
	for b := range s.blocks[id] {
		out = append(out, b)
	}
	for a := range s.blockedBy[id] {
		if _, both := s.blocks[id][a]; !both {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), max(maxIDs, 0))], nil
}
