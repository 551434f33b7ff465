package origin

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// RateLimit is a token bucket per user: Burst requests at once, then one
// per Every. Every 0 switches the limit off.
type RateLimit struct {
	Every time.Duration
	Burst int
}

// DefaultLocationLimit bounds PUT /api/users/me/location per user: 10 at
// once, then one per 30 s. A phone reports a new position every few minutes
// at most; an attacker moving their own point to triangulate someone needs
// hundreds of moves, which this stretches to hours (and the coarse grid
// makes useless anyway).
var DefaultLocationLimit = RateLimit{Every: 30 * time.Second, Burst: 10}

// String formats the limit as the flags take it.
func (l RateLimit) String() string {
	if l.Every <= 0 {
		return "off"
	}
	return fmt.Sprintf("%d at once, then one per %s", l.Burst, l.Every)
}

// userLimiter holds one token bucket per user id. Buckets that have filled
// up again are dropped by a sweep at most once per refill time, so memory
// is bounded by the users active within that time.
type userLimiter struct {
	every time.Duration
	burst float64
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[int64]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// newUserLimiter returns nil (no limit) when l.Every is 0.
func newUserLimiter(l RateLimit, now func() time.Time) (*userLimiter, error) {
	if l.Every < 0 || l.Burst < 0 || (l.Every > 0 && l.Burst == 0) {
		return nil, fmt.Errorf("origin: rate limit %+v: need Every >= 0 and, when Every > 0, Burst >= 1", l)
	}
	if l.Every == 0 {
		return nil, nil
	}
	if now == nil {
		now = time.Now
	}
	return &userLimiter{every: l.Every, burst: float64(l.Burst), now: now, buckets: make(map[int64]bucket), lastSweep: now()}, nil
}

// limit returns the configured limit.
func (l *userLimiter) limit() RateLimit {
	return RateLimit{Every: l.every, Burst: int(l.burst)}
}

// refill returns the bucket's tokens at t.
func (l *userLimiter) refill(b bucket, t time.Time) float64 {
	return math.Min(l.burst, b.tokens+float64(t.Sub(b.at))/float64(l.every))
}

// allow takes a token from the user's bucket. When there is none it
// returns false and how long until there is one.
func (l *userLimiter) allow(id int64) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(t)
	b, ok := l.buckets[id]
	tokens := l.burst
	if ok {
		tokens = l.refill(b, t)
	}
	if tokens < 1 {
		wait := time.Duration((1 - tokens) * float64(l.every))
		l.buckets[id] = bucket{tokens: tokens, at: t}
		return false, wait
	}
	l.buckets[id] = bucket{tokens: tokens - 1, at: t}
	return true, 0
}

// sweep drops full buckets once per refill time (caller holds mu).
func (l *userLimiter) sweep(t time.Time) {
	full := time.Duration(l.burst * float64(l.every))
	if t.Sub(l.lastSweep) < full {
		return
	}
	l.lastSweep = t
	for id, b := range l.buckets {
		if l.refill(b, t) >= l.burst {
			delete(l.buckets, id)
		}
	}
}
