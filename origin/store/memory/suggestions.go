package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// Suggestions implements store.Store.
func (s *Store) Suggestions(ctx context.Context, id int64, limit int) ([]store.Candidate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	me, err := s.get(id)
	if err != nil {
		return nil, err
	}
	if me.loc == nil {
		return nil, fmt.Errorf("memory: suggestions for %d: %w", id, store.ErrNoLocation)
	}
	prefs := store.DefaultPreferences()
	if me.prefs != nil {
		prefs = *me.prefs
	}
	radius := float64(prefs.MaxDistanceKm) * 1000
	consider := func(uid int64, out []store.Candidate) []store.Candidate {
		u := s.users[uid]
		if uid == id || u == nil || u.loc == nil || !u.profile.Active ||
			u.profile.Age < prefs.MinAge || u.profile.Age > prefs.MaxAge ||
			!slices.Contains(prefs.Genders, u.profile.Gender) {
			return out
		}
		if _, swiped := s.swipes[id][uid]; swiped || s.blocked(id, uid) {
			return out
		}
		d := geocache.DistanceM(me.loc.Lat, me.loc.Lng, u.loc.Lat, u.loc.Lng)
		if d > radius {
			return out
		}
		return append(out, store.Candidate{Profile: cloneProfile(u.profile), DistanceM: d})
	}
	var out []store.Candidate
	if geocache.CellCount(me.loc.Lat, me.loc.Lng, radius, gridPrecision) > maxGridCells {
		for uid := range s.users {
			out = consider(uid, out)
		}
	} else {
		for _, c := range geocache.CoveringCells(me.loc.Lat, me.loc.Lng, radius, gridPrecision) {
			for uid := range s.grid[c] {
				out = consider(uid, out)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DistanceM != out[j].DistanceM {
			return out[i].DistanceM < out[j].DistanceM
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
