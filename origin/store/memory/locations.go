package memory

import (
	"context"
	"fmt"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// setLocationLocked stores the coarse point for a report pt (caller holds
// mu): the centre of pt's grid cell, or the current point when pt is
// within the current cell widened by a fresh hysteresis margin.
func (s *Store) setLocationLocked(u *user, pt store.Point) store.LocationChange {
	ch := store.LocationChange{OldCell: u.cell}
	var old store.Point
	if u.loc != nil {
		old = *u.loc
	}
	lat, lng, kept := geocache.NextGridPoint(old.Lat, old.Lng, u.loc != nil, pt.Lat, pt.Lng, s.margin())
	if kept {
		ch.NewCell, ch.Stored, ch.Kept = u.cell, old, true
		return ch
	}
	pt = store.Point{Lat: lat, Lng: lng}
	if u.gridCell != "" {
		delete(s.grid[u.gridCell], u.profile.ID)
		if len(s.grid[u.gridCell]) == 0 {
			delete(s.grid, u.gridCell)
		}
	}
	p := pt
	u.loc = &p
	u.cell = geocache.Cell(pt.Lat, pt.Lng, store.CellPrecision)
	u.gridCell = geocache.Cell(pt.Lat, pt.Lng, gridPrecision)
	g := s.grid[u.gridCell]
	if g == nil {
		g = make(map[int64]struct{})
		s.grid[u.gridCell] = g
	}
	g[u.profile.ID] = struct{}{}
	ch.NewCell, ch.Stored = u.cell, pt
	return ch
}

// SetLocation implements store.Store.
func (s *Store) SetLocation(ctx context.Context, id int64, pt store.Point) (store.LocationChange, error) {
	if err := geocache.ValidatePoint(pt.Lat, pt.Lng); err != nil {
		return store.LocationChange{}, fmt.Errorf("memory: set location: %w: %w", store.ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.LocationChange{}, err
	}
	return s.setLocationLocked(u, pt), nil
}
