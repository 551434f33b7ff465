package eventbus

import (
	"maps"
	"slices"
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
