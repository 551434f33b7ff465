package postgis

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

// userState is what the cached suggestion path needs of the asking user:
// location, preferences and the exclusion set (ids the user swiped, blocked
// or was blocked by), sorted. It lives in the same tiered store as the cells
// under userKey, tagged userTag, so a purge reaches every origin sharing the
// store's Redis.
type userState struct {
	HasLocation bool
	At          store.Point
	Prefs       store.Preferences
	Excluded    []int64 // sorted, unique
}

func userKey(id int64) string { return "excl:" + strconv.FormatInt(id, 10) }
func userTag(id int64) string { return "excl:" + strconv.FormatInt(id, 10) }

// userLocks serialises this process's read-modify-write of one user's
// cached state (striped by id), so two writes of the same user never
// overwrite each other's change.
type userLocks [256]sync.Mutex

func (l *userLocks) of(id int64) *sync.Mutex { return &l[uint64(id)%uint64(len(l))] }

// exclude adds ids to the sorted exclusion set.
func (u *userState) exclude(ids ...int64) {
	for _, id := range ids {
		if i, found := slices.BinarySearch(u.Excluded, id); !found {
			u.Excluded = slices.Insert(u.Excluded, i, id)
		}
	}
}

// encodeUserState lays out a state: flags (bit 0: location), lat, lng,
// min age, max age, max distance, genders, then the exclusion count and the
// ids as deltas.
func encodeUserState(u userState) []byte {
	b := make([]byte, 0, 48+len(u.Excluded)*3)
	var flags byte
	if u.HasLocation {
		flags = 1
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(u.At.Lat))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(u.At.Lng))
	b = binary.AppendVarint(b, int64(u.Prefs.MinAge))
	b = binary.AppendVarint(b, int64(u.Prefs.MaxAge))
	b = binary.AppendVarint(b, int64(u.Prefs.MaxDistanceKm))
	b = binary.AppendUvarint(b, uint64(len(u.Prefs.Genders)))
	for _, g := range u.Prefs.Genders {
		b = appendString(b, g)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Excluded)))
	prev := int64(0)
	for _, id := range u.Excluded {
		b = binary.AppendVarint(b, id-prev)
		prev = id
	}
	return b
}

// decodeUserState reverses encodeUserState.
func decodeUserState(b []byte) (userState, error) {
	if len(b) < 1 {
		return userState{}, errCorruptEntry
	}
	u := userState{HasLocation: b[0]&1 != 0}
	r := reader{b: b[1:]}
	u.At.Lat, u.At.Lng = r.float(), r.float()
	u.Prefs.MinAge = int16(r.varint())
	u.Prefs.MaxAge = int16(r.varint())
	u.Prefs.MaxDistanceKm = int32(r.varint())
	u.Prefs.Genders = r.strings()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errCorruptEntry
	}
	if r.err != nil {
		return userState{}, r.err
	}
	u.Excluded = make([]int64, 0, n)
	prev := int64(0)
	for i := uint64(0); i < n && r.err == nil; i++ {
		prev += r.varint()
		u.Excluded = append(u.Excluded, prev)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorruptEntry
	}
	if r.err != nil {
		return userState{}, r.err
	}
	return u, nil
}

// userStateSQL reads, in one statement, the location, preferences and
// exclusion set of a user (swipes by the user; blocks either way).
const userStateSQL = `
SELECT ST_Y(u.geog::geometry), ST_X(u.geog::geometry), p.min_age, p.max_age, p.max_distance_km, p.genders,
       ARRAY(SELECT target_id FROM swipes WHERE swiper_id = $1
             UNION SELECT blocked_id FROM blocks WHERE blocker_id = $1
             UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1)
FROM users u LEFT JOIN preferences p ON p.user_id = u.id WHERE u.id = $1`

// cachedUserState returns the user's state from the store, loading it with
// one query on a miss. The load runs under the user's lock, so it never
// interleaves with this process's update of the same user (the store makes a
// fill visible for a moment before its purge re-check drops it: unlocked, a
// load that read the database before a swipe committed could be seen by the
// swiper's next request). It is stored only if no purge of the user happened
// since it began, which covers writes reported by other origins.
//
// A state in the last fifth of its lifetime is reloaded in the background
// (refreshUserState), so in steady state expiry puts no query on a
// request's path.
func (s *Store) cachedUserState(ctx context.Context, id int64) (userState, error) {
	if u, ok := s.peekUserState(ctx, id); ok {
		return u, nil
	}
	mu := s.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	if u, ok := s.peekUserState(ctx, id); ok { // filled while we waited
		return u, nil
	}
	return s.loadUserState(ctx, id)
}

// loadUserState reads a user's state with one query and stores it unless a
// purge of the user happened since the read began. The caller holds the
// user's lock.
func (s *Store) loadUserState(ctx context.Context, id int64) (userState, error) {
	gen := s.shared.Generation()
	var lat, lng *float64
	var minAge, maxAge *int16
	var dist *int32
	var genders []string
	var excl []int64
	err := s.primary.QueryRow(ctx, userStateSQL, id).Scan(&lat, &lng, &minAge, &maxAge, &dist, &genders, &excl)
	if err != nil {
		return userState{}, notFound(err, fmt.Sprintf("suggestions for %d", id))
	}
	u := userState{Prefs: store.DefaultPreferences()}
	if lat != nil {
		u.HasLocation, u.At = true, store.Point{Lat: *lat, Lng: *lng}
	}
	if minAge != nil {
		u.Prefs = store.Preferences{MinAge: *minAge, MaxAge: *maxAge, MaxDistanceKm: *dist, Genders: genders}
	}
	slices.Sort(excl)
	u.Excluded = slices.Compact(excl)
	_, _ = s.shared.Set(ctx, userKey(id), encodeUserState(u), s.userTTL, []string{userTag(id)}, gen)
	return u, nil
}

// peekUserState returns the stored state, if any, and starts its
// background reload when it is in the last fifth of its lifetime.
func (s *Store) peekUserState(ctx context.Context, id int64) (userState, bool) {
	e, ok := s.shared.GetEntry(ctx, userKey(id))
	if !ok {
		return userState{}, false
	}
	u, err := decodeUserState(e.Value)
	if err != nil {
		return userState{}, false
	}
	if time.Until(e.Expires) < s.userTTL/5 {
		s.refreshUserState(id)
	}
	return u, true
}

// userRefreshes bounds the background reloads of user states at once.
const userRefreshes = 2

// refreshUserState reloads a user's state in the background, once at a time
// per user and within userRefreshes; when all are busy a later read tries
// again (the state is still served until it expires).
func (s *Store) refreshUserState(id int64) {
	if _, busy := s.refreshing.LoadOrStore(id, struct{}{}); busy {
		return
	}
	select {
	case s.refreshSem <- struct{}{}:
	default:
		s.refreshing.Delete(id)
		return
	}
	s.bg.Add(1)
	go func() {
		defer func() {
			<-s.refreshSem
			s.refreshing.Delete(id)
			s.bg.Done()
		}()
		ctx, cancel := s.acquireCtx(s.bgCtx)
		defer cancel()
		mu := s.locks.of(id)
		mu.Lock()
		defer mu.Unlock()
		_, _ = s.loadUserState(ctx, id) // on failure the state expires and the next read loads it
	}()
}

// stopRefreshes ends background reloads and waits for them (before the
// pools close).
func (s *Store) stopRefreshes() error {
	s.bgCancel()
	s.bg.Wait()
	return nil
}

// updateUserState applies a write this process made to the user's cached
// state: under the user's lock it reads the state, purges it everywhere
// (other origins sharing the store drop their copy; a load in flight here is
// not stored), then stores the changed state if there was one. With ok
// false (the write may or may not have committed) it only purges. It runs
// after the write committed, on a context that is not cancelled with the
// request's.
func (s *Store) updateUserState(ctx context.Context, id int64, ok bool, change func(*userState)) {
	if s.shared == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	mu := s.locks.of(id)
	mu.Lock()
	defer mu.Unlock()
	b, _, had := s.shared.Get(ctx, userKey(id))
	s.shared.PurgeTags(ctx, userTag(id))
	if !had || !ok {
		return
	}
	u, err := decodeUserState(b)
	if err != nil {
		return
	}
	change(&u)
	gen := s.shared.Generation() // after our own purge: only a later one stops the store
	_, _ = s.shared.Set(ctx, userKey(id), encodeUserState(u), s.userTTL, []string{userTag(id)}, gen)
}
