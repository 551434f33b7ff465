// Package memory is the embedded Spark store: all state in process, users
// indexed on a geohash grid, swipes in per-user sets. It is the development
// default of `spark origin` and passes the same conformance suite as the
// PostGIS store. Its data lives only as long as the process: nothing is
// written to disk.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// gridPrecision is the geohash precision of the in-memory grid (~39 x 19 km).
const gridPrecision = 4

// maxGridCells: above this many covering cells a suggestion query scans all
// located users instead of the grid.
const maxGridCells = 256

type user struct {
	profile  store.Profile
	prefs    *store.Preferences
	loc      *store.Point
	cell     string // at store.CellPrecision
	gridCell string
}

type match struct {
	store.Match
	ended bool
}

type conversation struct {
	id, matchID  int64
	a, b         int64
	createdAt    time.Time
	messages     []store.Message // ascending id
	byClientID   map[string]int  // sender \x00 client id -> index
	lastRead     map[int64]int64
	lastActivity time.Time
}

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	mu        sync.RWMutex
	now       func() time.Time
	users     map[int64]*user
	grid      map[string]map[int64]struct{}
	swipes    map[int64]map[int64]store.Direction
	blocks    map[int64]map[int64]struct{} // blocker -> blocked
	blockedBy map[int64]map[int64]struct{} // blocked -> blockers
	matches   map[int64]*match
	pairMatch map[[2]int64]int64
	convs     map[int64]*conversation
	logs      map[int64]*eventLog // user -> their events
	devices   map[deviceKey]*store.Device
	// userDevices indexes devices by their user.
	userDevices map[int64]map[deviceKey]struct{}
	nextUser    int64
	nextMatch   int64
	nextConv    int64
	nextMsg     int64
	lastTime    time.Time
	// margin draws the hysteresis margin of each location update.
	margin func() float64
}

// New returns an empty store.
func New() *Store {
	return &Store{
		now:         time.Now,
		users:       make(map[int64]*user),
		grid:        make(map[string]map[int64]struct{}),
		swipes:      make(map[int64]map[int64]store.Direction),
		blocks:      make(map[int64]map[int64]struct{}),
		blockedBy:   make(map[int64]map[int64]struct{}),
		matches:     make(map[int64]*match),
		pairMatch:   make(map[[2]int64]int64),
		convs:       make(map[int64]*conversation),
		logs:        make(map[int64]*eventLog),
		devices:     make(map[deviceKey]*store.Device),
		userDevices: make(map[int64]map[deviceKey]struct{}),
		margin:      geocache.RandomHysteresisM,
	}
}

var _ store.Store = (*Store)(nil)

// tick returns a strictly increasing timestamp (caller holds mu).
func (s *Store) tick() time.Time {
	t := s.now().UTC().Truncate(time.Microsecond)
	if !t.After(s.lastTime) {
		t = s.lastTime.Add(time.Microsecond)
	}
	s.lastTime = t
	return t
}

func pair(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

func cloneProfile(p store.Profile) store.Profile {
	p.Photos = slices.Clone(p.Photos)
	if p.Photos == nil {
		p.Photos = []string{}
	}
	p.Uploads = slices.Clone(p.Uploads)
	if p.Uploads == nil {
		p.Uploads = []string{}
	}
	return p
}

func (s *Store) get(id int64) (*user, error) {
	u, ok := s.users[id]
	if !ok {
		return nil, fmt.Errorf("memory: user %d: %w", id, store.ErrNotFound)
	}
	return u, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements store.Store.
func (s *Store) Close() {}
