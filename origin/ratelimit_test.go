package origin

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func (l *userLimiter) size() int         { l.mu.Lock(); defer l.mu.Unlock(); return len(l.buckets) }
func mustLimiter(t *testing.T, r RateLimit, c *fakeClock) *userLimiter {
	t.Helper()
	l, err := newUserLimiter(r, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestUserLimiter: a burst, then one per interval; users apart; the wait
// until the next token; full buckets swept so memory follows active users.
func TestUserLimiter(t *testing.T) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := mustLimiter(t, RateLimit{Every: 30 * time.Second, Burst: 10}, c)
	for i := 0; i < 10; i++ {
		if ok, _ := l.allow(1); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow(1)
	if ok || wait != 30*time.Second {
		t.Fatalf("11th: ok=%v wait=%v, want refused for 30s", ok, wait)
	}
	if ok, _ := l.allow(2); !ok {
		t.Fatal("another user was limited")
	}
	c.add(20 * time.Second)
	if ok, wait := l.allow(1); ok || wait != 10*time.Second {
		t.Fatalf("after 20s: ok=%v wait=%v, want refused for 10s more", ok, wait)
	}
	c.add(10 * time.Second)
	if ok, _ := l.allow(1); !ok {
		t.Fatal("a token did not come back after 30s")
	}
	if ok, _ := l.allow(1); ok {
		t.Fatal("two tokens after 30s")
	}
	// An hour of one request every 30 s is allowed; faster is not.
	for i := 0; i < 120; i++ {
		c.add(30 * time.Second)
		if ok, _ := l.allow(1); !ok {
			t.Fatalf("steady request %d refused", i)
		}
	}
	// Idle users' buckets refill and are dropped.
	for id := int64(100); id < 1100; id++ {
		l.allow(id)
	}
	if n := l.size(); n < 1000 {
		t.Fatalf("%d buckets", n)
	}
	c.add(10 * 30 * time.Second)
	l.allow(1)
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets left after everyone refilled, want 1", n)
	}
	if off, err := newUserLimiter(RateLimit{}, nil); err != nil || off != nil {
		t.Fatalf("Every 0: %v %v, want no limiter", off, err)
	}
	if ok, _ := (*userLimiter)(nil).allow(1); !ok {
		t.Fatal("no limiter refused")
	}
	for _, bad := range []RateLimit{{Every: -time.Second, Burst: 1}, {Every: time.Second}, {Every: time.Second, Burst: -1}} {
		if _, err := newUserLimiter(bad, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
