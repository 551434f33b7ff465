package eventbus

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// wantedSet is the users a subscriber must hold: kept across connections,
// and subscribed again on every reconnection.
type wantedSet map[int64]struct{}

// apply adds users (subscribe) or removes them.
func (w wantedSet) apply(subscribe bool, users []int64) {
	for _, u := range users {
		if subscribe {
			w[u] = struct{}{}
		} else {
			delete(w, u)
		}
	}
}

// list returns the users, in no order.
func (w wantedSet) list() []int64 { return slices.Collect(maps.Keys(w)) }

// subscriptions is what both subscribers (Redis, origin stream) guard with
// their mutex: the users they must hold and whether they are closed. The
// mutex guards the subscriber's connections too.
type subscriptions struct {
	mu     sync.Mutex
	wanted wantedSet
	closed bool
}

// newSubscriptions returns an open set of no users.
func newSubscriptions() subscriptions { return subscriptions{wanted: make(wantedSet)} }

// lockChange checks users and, unless the subscriber is closed, records
// them as wanted (subscribe) or no longer, and returns with mu held for
// the subscriber to send the change; on an error mu is not held.
func (s *subscriptions) lockChange(subscribe bool, users []int64) error {
	if err := checkUsers(users); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.wanted.apply(subscribe, users)
	return nil
}

// orDefault sets *v to def when it is not positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Reconnection backoff defaults, both transports.
const (
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 5 * time.Second
)

// fillReconnect applies the backoff defaults; max is at least min.
func fillReconnect(minWait, maxWait *time.Duration) {
	orDefault(minWait, defaultReconnectMin)
	orDefault(maxWait, defaultReconnectMax)
	*maxWait = max(*maxWait, *minWait)
}
