package tiered

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
)

// staleBound is the most time after Redis answers again that a node may
// still serve an entry another node purged during the outage: its purge
// channel is retried every probeEvery, and one dial and one SUBSCRIBE
// round trip follow. The allowance beyond probeEvery is for a loaded CI
// machine (-race, other packages' tests); before bus.go re-subscribed at a
// constant interval the window reached seconds.
const staleBound = probeEvery + 400*time.Millisecond

// gapNodes is two nodes sharing one Redis server of the test's own, each
// through its own proxy, so that the test can take Redis away from one or
// both and stop or restart the server itself.
type gapNodes struct {
	srv    *testredis.Server
	pa, pb *testredis.Proxy
	p      *proxied
}

func newGapNodes(t *testing.T) *gapNodes {
	t.Helper()
	g := &gapNodes{srv: testredis.Start(t)}
	g.pa, g.pb = testredis.NewProxy(t, g.srv.Addr()), testredis.NewProxy(t, g.srv.Addr())
	ro := generous(testOptions(t, g.pa.Addr()))
	a := newTiered(t, ro)
	ro.Addrs = []string{g.pb.Addr()}
	b := newTiered(t, ro)
	g.p = &proxied{a: a, b: b, prefix: ro.KeyPrefix, ro: ro}
	g.p.redis = redis.NewClient(&redis.Options{Addr: g.srv.Addr()})
	t.Cleanup(func() { _ = g.p.redis.Close() })
	testutil.Eventually(t, 10*time.Second, "both nodes to use Redis", func() bool {
		return !a.Stats().L2Down && !b.Stats().L2Down && !a.Stats().PurgeChannelDown && !b.Stats().PurgeChannelDown
	})
	return g
}

// watchOld reads key from c every millisecond until d after from and
// returns how long after from the last read that served "old" began (-1 if
// none did). A miss is fine: the caller fills from the origin.
func watchOld(c *Cache, key string, from time.Time, d time.Duration) time.Duration {
	last := time.Duration(-1)
	for time.Since(from) < d {
		start := time.Since(from)
		if v, _, ok := c.Get(context.Background(), key); ok && string(v) == "old" {
			last = start
		}
		time.Sleep(time.Millisecond)
	}
	return last
}

// After Redis is gone for both nodes and node a purges an entry both hold
// (its purge waits for Redis), node b, which cannot hear it, keeps
// answering from L1 through the outage; once Redis answers again, b stops
// serving the purged value within staleBound, whether Redis comes back
// empty (restarted) or with its data (a partition healed: the entry is
// still in Redis until a's deferred purge gets there).
func TestNoStaleAfterRedisReturns(t *testing.T) {
	for _, mode := range []string{"restarted", "partitioned"} {
		t.Run(mode, func(t *testing.T) {
			g := newGapNodes(t)
			a, b := g.p.a, g.p.b
			ctx := context.Background()
			g.p.fill(t, "/p")
			if mode == "restarted" {
				g.srv.Stop()
			} else {
				g.pa.Cut()
				g.pb.Cut()
			}
			a.Delete(ctx, "/p")
			testutil.Eventually(t, 10*time.Second, "b to notice its purge channel is down", func() bool { return b.Stats().PurgeChannelDown })
			// Through the outage b answers from L1 (it cannot know).
			for i := 0; i < 20; i++ {
				if _, layer, ok := b.Get(ctx, "/p"); !ok || layer != LayerL1 {
					t.Fatalf("b.Get during the outage = %v from %q, want an L1 hit", ok, layer)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if mode == "restarted" {
				g.srv.Start()
			} else {
				g.pa.Restore()
				g.pb.Restore()
			}
			back := time.Now()
			last := watchOld(b, "/p", back, l2Settle+time.Second)
			t.Logf("%s: b served the purged value until %s after Redis answered (bound %s)", mode, last, staleBound)
			if last > staleBound {
				t.Errorf("b served the value a purged during the outage %s after Redis answered, want at most %s", last, staleBound)
			}
			neverOld(t, "/p", a, b)
			if s := b.Stats(); s.L1Resets != 1 || s.PurgeChannelDown {
				t.Errorf("b after the outage: %d L1 resets, channel down %v; want 1, false", s.L1Resets, s.PurgeChannelDown)
			}
			testutil.Eventually(t, 10*time.Second, "a's deferred purge to reach Redis", func() bool { return a.Stats().PurgesPending == 0 })
			neverOld(t, "/p", a, b)
		})
	}
}

// Node b hears Redis again before node a, whose purge made during the
// outage is still waiting: Redis (which kept its data) holds the purged
// entry, and b, having just re-subscribed, must not take it from there.
// For l2Settle b fills from elsewhere; once a is back its purge removes
// the entry from Redis.
func TestResubscribedNodeWaitsForOthersDeferredPurges(t *testing.T) {
	g := newGapNodes(t)
	a, b := g.p.a, g.p.b
	ctx := context.Background()
	g.p.fill(t, "/p")
	g.pa.Cut()
	g.pb.Cut()
	a.Delete(ctx, "/p")
	testutil.Eventually(t, 10*time.Second, "both purge channels to be down", func() bool {
		return a.Stats().PurgeChannelDown && b.Stats().PurgeChannelDown
	})
	g.pb.Restore()
	back := time.Now()
	testutil.Eventually(t, 10*time.Second, "b to re-subscribe", func() bool { return !b.Stats().PurgeChannelDown })
	if !g.p.inRedis(t, "/p") {
		t.Fatal("Redis lost the entry: the test needs it there, purged only by a's deferred purge")
	}
	// Well within l2Settle of b's re-subscription.
	if last := watchOld(b, "/p", back, l2Settle/2); last > staleBound {
		t.Errorf("b served the value a purged %s after Redis answered it, want at most %s", last, staleBound)
	}
	g.pa.Restore()
	testutil.Eventually(t, 10*time.Second, "a's deferred purge to reach Redis", func() bool { return a.Stats().PurgesPending == 0 })
	if g.p.inRedis(t, "/p") {
		t.Error("a's deferred purge did not remove the entry from Redis")
	}
	neverOld(t, "/p", a, b)
}

// While its purge channel is down a node neither reads nor writes L2,
// though Redis answers its commands: a value read then could be promoted
// into L1 just before a purge it would not hear, and a fill written then
// could be older than a purge it missed. Once the channel is back, L2 serves
// again after l2Settle.
func TestNoL2ReadsWhilePurgeChannelDown(t *testing.T) {
	g := newGapNodes(t)
	a, b := g.p.a, g.p.b
	ctx := context.Background()
	if ok, err := a.Set(ctx, "/q", []byte("v"), time.Hour, nil, a.Generation()); !ok || err != nil {
		t.Fatalf("Set: %v %v", ok, err)
	}
	g.pb.SetRule(func(args []string) testredis.Action {
		if strings.EqualFold(args[0], "subscribe") {
			return testredis.Drop
		}
		return testredis.Forward
	})
	g.pb.Cut() // drops b's connections, the subscription's too
	g.pb.Restore()
	testutil.Eventually(t, 10*time.Second, "b's purge channel to be down", func() bool { return b.Stats().PurgeChannelDown })
	for i := 0; i < 50; i++ {
		if _, layer, ok := b.Get(ctx, "/q"); ok {
			t.Fatalf("b served /q from %q while its purge channel was down, want a miss", layer)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Nor does it write there: its fill may be older than a purge it missed.
	if ok, err := b.Set(ctx, "/r", []byte("v"), time.Hour, nil, b.Generation()); !ok || err != nil {
		t.Fatalf("b.Set during the gap: %v %v, want stored in L1", ok, err)
	}
	if g.p.inRedis(t, "/r") {
		t.Error("b wrote a fill to Redis while its purge channel was down")
	}
	if b.Stats().L2Down {
		t.Fatal("b's breaker opened: the test means Redis to answer b's commands")
	}
	g.pb.SetRule(nil)
	testutil.Eventually(t, 10*time.Second, "b to re-subscribe", func() bool { return !b.Stats().PurgeChannelDown })
	back := time.Now()
	var first time.Duration
	testutil.Eventually(t, 10*time.Second, "b to read /q from L2 again", func() bool {
		_, layer, ok := b.Get(ctx, "/q")
		first = time.Since(back)
		return ok && layer == LayerL2
	})
	if first < l2Settle-50*time.Millisecond {
		t.Errorf("b read L2 again %s after re-subscribing, want no sooner than l2Settle (%s)", first, l2Settle)
	}
}

// A purge channel whose server stops answering without a reset (the
// proxy swallows the PING a quiet subscription sends) is found dead within
// idleCheck+pongWait and re-established, and that is a gap: L1 is
// dropped. A quiet but answering subscription is kept, L1 with it.
func TestSilentPurgeChannelIsAGap(t *testing.T) {
	g := newGapNodes(t)
	b := g.p.b
	ctx := context.Background()
	if ok, err := b.Set(ctx, "/s", []byte("v"), time.Hour, nil, b.Generation()); !ok || err != nil {
		t.Fatalf("Set: %v %v", ok, err)
	}
	time.Sleep(idleCheck + pongWait + time.Second)
	if s := b.Stats(); s.L1Resets != 0 || s.PurgeChannelDown {
		t.Fatalf("a quiet subscription that answers its PINGs: %d L1 resets, channel down %v; want 0, false", s.L1Resets, s.PurgeChannelDown)
	}
	if _, layer, ok := b.Get(ctx, "/s"); !ok || layer != LayerL1 {
		t.Fatalf("b.Get = %v from %q, want an L1 hit", ok, layer)
	}
	g.pb.SetRule(func(args []string) testredis.Action {
		if strings.EqualFold(args[0], "ping") {
			return testredis.Swallow
		}
		return testredis.Forward
	})
	start := time.Now()
	testutil.Eventually(t, idleCheck+pongWait+5*time.Second, "b to drop L1 after its purge channel went silent", func() bool { return b.Stats().L1Resets >= 1 })
	g.pb.SetRule(nil)
	t.Logf("silent purge channel found and re-established %s after it went silent (idleCheck+pongWait = %s, then a re-subscription)", time.Since(start), idleCheck+pongWait)
	if _, _, ok := b.Get(ctx, "/s"); ok {
		t.Error("b still serves an entry stored before the gap")
	}
}
