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
	"sort"
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
	nextUser  int64
	nextMatch int64
	nextConv  int64
	nextMsg   int64
	lastTime  time.Time
	// margin draws the hysteresis margin of each location update.
	margin func() float64
}

// New returns an empty store.
func New() *Store {
	return &Store{
		now:       time.Now,
		users:     make(map[int64]*user),
		grid:      make(map[string]map[int64]struct{}),
		swipes:    make(map[int64]map[int64]store.Direction),
		blocks:    make(map[int64]map[int64]struct{}),
		blockedBy: make(map[int64]map[int64]struct{}),
		matches:   make(map[int64]*match),
		pairMatch: make(map[[2]int64]int64),
		convs:     make(map[int64]*conversation),
		margin:    geocache.RandomHysteresisM,
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

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, nu store.NewUser) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: create user: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUser++
	id := s.nextUser
	u := &user{profile: store.Profile{
		ID: id, Name: nu.Profile.Name, Age: nu.Profile.Age, Gender: nu.Profile.Gender,
		Bio: nu.Profile.Bio, Photos: slices.Clone(nu.Profile.Photos), Active: nu.Profile.Active, Version: 1,
	}}
	if nu.Preferences != nil {
		p := *nu.Preferences
		p.Genders = slices.Clone(p.Genders)
		u.prefs = &p
	}
	s.users[id] = u
	if nu.Location != nil {
		s.setLocationLocked(u, *nu.Location)
	}
	return id, nil
}

func (s *Store) get(id int64) (*user, error) {
	u, ok := s.users[id]
	if !ok {
		return nil, fmt.Errorf("memory: user %d: %w", id, store.ErrNotFound)
	}
	return u, nil
}

// GetProfile implements store.Store.
func (s *Store) GetProfile(ctx context.Context, id int64) (store.Profile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	return cloneProfile(u.profile), nil
}

// UpdateProfile implements store.Store.
func (s *Store) UpdateProfile(ctx context.Context, id int64, p store.ProfileUpdate, ifVersion int64) (store.Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	if ifVersion > 0 && u.profile.Version != ifVersion {
		return store.Profile{}, fmt.Errorf("memory: update profile %d: version %d, want %d: %w",
			id, u.profile.Version, ifVersion, store.ErrPreconditionFailed)
	}
	u.profile = store.Profile{ID: id, Name: p.Name, Age: p.Age, Gender: p.Gender, Bio: p.Bio,
		Photos: slices.Clone(p.Photos), Uploads: u.profile.Uploads, Active: p.Active, Version: u.profile.Version + 1}
	return cloneProfile(u.profile), nil
}

// AddPhoto implements store.Store.
func (s *Store) AddPhoto(ctx context.Context, id int64, name string, max int) (store.Profile, error) {
	if err := ctx.Err(); err != nil {
		return store.Profile{}, fmt.Errorf("memory: add photo: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	if slices.Contains(u.profile.Uploads, name) {
		return store.Profile{}, fmt.Errorf("memory: add photo %q to %d: already there: %w", name, id, store.ErrConflict)
	}
	if len(u.profile.Uploads) >= max {
		return store.Profile{}, fmt.Errorf("memory: add photo to %d: %d photos, limit %d: %w", id, len(u.profile.Uploads), max, store.ErrConflict)
	}
	// A fresh slice: earlier clones handed out never alias the new state.
	u.profile.Uploads = append(slices.Clip(u.profile.Uploads), name)
	u.profile.Version++
	return cloneProfile(u.profile), nil
}

// RemovePhoto implements store.Store.
func (s *Store) RemovePhoto(ctx context.Context, id int64, name string) (store.Profile, error) {
	if err := ctx.Err(); err != nil {
		return store.Profile{}, fmt.Errorf("memory: remove photo: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return store.Profile{}, err
	}
	i := slices.Index(u.profile.Uploads, name)
	if i < 0 {
		return store.Profile{}, fmt.Errorf("memory: remove photo %q of %d: %w", name, id, store.ErrNotFound)
	}
	u.profile.Uploads = slices.Delete(slices.Clone(u.profile.Uploads), i, i+1)
	u.profile.Version++
	return cloneProfile(u.profile), nil
}

// GetPreferences implements store.Store.
func (s *Store) GetPreferences(ctx context.Context, id int64) (store.Preferences, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, err := s.get(id)
	if err != nil {
		return store.Preferences{}, err
	}
	if u.prefs == nil {
		return store.DefaultPreferences(), nil
	}
	p := *u.prefs
	p.Genders = slices.Clone(p.Genders)
	return p, nil
}

// PutPreferences implements store.Store.
func (s *Store) PutPreferences(ctx context.Context, id int64, p store.Preferences) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.get(id)
	if err != nil {
		return err
	}
	p.Genders = slices.Clone(p.Genders)
	u.prefs = &p
	return nil
}

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

func (s *Store) blocked(a, b int64) bool {
	if _, ok := s.blocks[a][b]; ok {
		return true
	}
	_, ok := s.blocks[b][a]
	return ok
}

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
	return res, nil
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, id, target int64) error {
	if id == target {
		return fmt.Errorf("memory: block self: %w", store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(target); err != nil {
		return err
	}
	if s.blocks[id] == nil {
		s.blocks[id] = make(map[int64]struct{})
	}
	s.blocks[id][target] = struct{}{}
	if s.blockedBy[target] == nil {
		s.blockedBy[target] = make(map[int64]struct{})
	}
	s.blockedBy[target][id] = struct{}{}
	if mid, ok := s.pairMatch[pair(id, target)]; ok {
		s.matches[mid].ended = true
	}
	return nil
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
func (s *Store) Unmatch(ctx context.Context, id, matchID int64) (store.Match, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.matches[matchID]
	if !ok || m.ended || (m.UserA != id && m.UserB != id) {
		return store.Match{}, fmt.Errorf("memory: unmatch %d: %w", matchID, store.ErrNotFound)
	}
	m.ended = true
	mm := m.Match
	mm.PeerID = mm.Peer(id)
	return mm, nil
}

// conv returns an open conversation the user takes part in (caller holds mu).
func (s *Store) conv(id, convID int64) (*conversation, error) {
	c, ok := s.convs[convID]
	if !ok || (c.a != id && c.b != id) || s.matches[c.matchID].ended {
		return nil, fmt.Errorf("memory: conversation %d: %w", convID, store.ErrNotFound)
	}
	return c, nil
}

func (c *conversation) unread(me int64) int64 {
	last := c.lastRead[me]
	var n int64
	for i := len(c.messages) - 1; i >= 0 && c.messages[i].ID > last; i-- {
		if c.messages[i].SenderID != me {
			n++
		}
	}
	return n
}

// ListConversations implements store.Store.
func (s *Store) ListConversations(ctx context.Context, id int64) ([]store.ConversationSummary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type row struct {
		sum store.ConversationSummary
		at  time.Time
	}
	var rows []row
	for _, c := range s.convs {
		if (c.a != id && c.b != id) || s.matches[c.matchID].ended {
			continue
		}
		sum := store.ConversationSummary{ID: c.id, MatchID: c.matchID, PeerID: c.a, CreatedAt: c.createdAt, UnreadCount: c.unread(id)}
		if c.a == id {
			sum.PeerID = c.b
		}
		if n := len(c.messages); n > 0 {
			m := c.messages[n-1]
			sum.LastMessage = &m
		}
		rows = append(rows, row{sum, c.lastActivity})
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].at.Equal(rows[j].at) {
			return rows[i].at.After(rows[j].at)
		}
		return rows[i].sum.ID > rows[j].sum.ID
	})
	out := make([]store.ConversationSummary, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.sum)
	}
	return out, nil
}

// ListMessages implements store.Store.
func (s *Store) ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]store.Message, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, err := s.conv(id, convID)
	if err != nil {
		return nil, err
	}
	end := len(c.messages)
	if before > 0 {
		end = sort.Search(len(c.messages), func(i int) bool { return c.messages[i].ID >= before })
		if end == len(c.messages) || c.messages[end].ID != before {
			return []store.Message{}, nil // the cursor is not a message of this conversation
		}
	}
	out := []store.Message{}
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, c.messages[i])
	}
	return out, nil
}

// SendMessage implements store.Store.
func (s *Store) SendMessage(ctx context.Context, id, convID int64, body, clientMsgID string) (store.Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.conv(id, convID)
	if err != nil {
		return store.Message{}, false, err
	}
	key := fmt.Sprintf("%d\x00%s", id, clientMsgID)
	if i, ok := c.byClientID[key]; ok {
		return c.messages[i], false, nil
	}
	s.nextMsg++
	m := store.Message{ID: s.nextMsg, ConversationID: convID, SenderID: id, Body: body, ClientMsgID: clientMsgID, CreatedAt: s.tick()}
	c.messages = append(c.messages, m)
	c.byClientID[key] = len(c.messages) - 1
	c.lastActivity = m.CreatedAt
	return m, true, nil
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, id, convID, messageID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.conv(id, convID)
	if err != nil {
		return err
	}
	i := sort.Search(len(c.messages), func(i int) bool { return c.messages[i].ID >= messageID })
	if i == len(c.messages) || c.messages[i].ID != messageID {
		return fmt.Errorf("memory: mark read: message %d not in conversation %d: %w", messageID, convID, store.ErrNotFound)
	}
	if messageID > c.lastRead[id] {
		c.lastRead[id] = messageID
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements store.Store.
func (s *Store) Close() {}
