package tiered

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
)

// proxied is two nodes sharing one Redis through a proxy that can fail
// commands, and a direct client to look at what Redis holds.
type proxied struct {
	a, b   *Cache
	proxy  *testredis.Proxy
	redis  *redis.Client
	prefix string
	ro     RedisOptions
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	addr := testredis.Shared(t)
	p := &proxied{proxy: testredis.NewProxy(t, addr)}
	p.redis = redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = p.redis.Close() })
	p.ro = generous(testOptions(t, p.proxy.Addr()))
	p.prefix = p.ro.KeyPrefix
	p.a, p.b = newTiered(t, p.ro), newTiered(t, p.ro)
	testutil.Eventually(t, 10*time.Second, "both nodes to use Redis", func() bool { return !p.a.Stats().L2Down && !p.b.Stats().L2Down })
	return p
}

// inRedis reports whether Redis holds an entry under key.
func (p *proxied) inRedis(t *testing.T, key string) bool {
	t.Helper()
	n, err := p.redis.Exists(context.Background(), p.prefix+"k:"+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// isCommand matches a command by name (any case) and first argument.
func isCommand(name, arg string) func([]string) bool {
	return func(args []string) bool {
		return strings.EqualFold(args[0], name) && len(args) > 1 && args[1] == arg
	}
}

// fill stores "old" under key (tagged T) through a, and has b read it from
// Redis into its L1, so that both nodes and both tiers hold the value a
// purge must remove.
func (p *proxied) fill(t *testing.T, key string) {
	t.Helper()
	ctx := context.Background()
	if ok, err := p.a.Set(ctx, key, []byte("old"), time.Hour, []string{"T"}, p.a.Generation()); !ok || err != nil {
		t.Fatalf("Set: %v %v", ok, err)
	}
	if v, layer, ok := p.b.Get(ctx, key); !ok || string(v) != "old" || layer != LayerL2 {
		t.Fatalf("b.Get = %q %s %v, want old from l2", v, layer, ok)
	}
	if _, layer, _ := p.b.Get(ctx, key); layer != LayerL1 {
		t.Fatalf("b did not promote %s", key)
	}
}

// neverOld fails the test if a node serves "old" under key.
func neverOld(t *testing.T, key string, nodes ...*Cache) {
	t.Helper()
	for i, c := range nodes {
		if v, layer, ok := c.Get(context.Background(), key); ok && string(v) == "old" {
			t.Fatalf("node %d served the purged value from %s", i, layer)
		}
	}
}

// A purge whose Redis call fails once (whichever: the entry's DEL, the tag
// set's read, the PUBLISH; a Redis error or a dropped connection) still
// reaches Redis and the other node, and the purged value is never served
// again from either tier of either node.
func TestFailedPurgeReachesRedisAndOtherNodes(t *testing.T) {
	const key = "/api/users/1/profile"
	cases := []struct {
		name   string
		n      int
		action testredis.Action
		match  func(prefix string) func([]string) bool
		purge  func(c *Cache) int
	}{
		{"key purge, DEL fails", 1, testredis.Fail,
			func(p string) func([]string) bool { return isCommand("del", p+"k:"+key) },
			func(c *Cache) int { return c.Delete(context.Background(), key) }},
		{"key purge, connection dropped", 2, testredis.Drop,
			func(p string) func([]string) bool { return isCommand("del", p+"k:"+key) },
			func(c *Cache) int { return c.Delete(context.Background(), key) }},
		{"key purge, PUBLISH fails", 1, testredis.Fail,
			func(p string) func([]string) bool { return isCommand("publish", p+"purge") },
			func(c *Cache) int { return c.Delete(context.Background(), key) }},
		{"tag purge, tag set read fails", 1, testredis.Fail,
			func(p string) func([]string) bool {
				return func(args []string) bool {
					return isCommand("zrange", p+"tz:T")(args) || isCommand("smembers", p+"t:T")(args)
				}
			},
			func(c *Cache) int { return c.PurgeTags(context.Background(), "T") }},
		{"tag purge, DEL after the tag set was taken fails", 1, testredis.Fail,
			func(p string) func([]string) bool { return isCommand("del", p+"k:"+key) },
			func(c *Cache) int { return c.PurgeTags(context.Background(), "T") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxied(t)
			p.fill(t, key)
			p.proxy.FailNext(tc.n, tc.action, tc.match(p.prefix))
			tc.purge(p.a)
			if p.proxy.Failed() != tc.n {
				t.Fatalf("the proxy failed %d commands, want %d: the purge never met the failure", p.proxy.Failed(), tc.n)
			}
			neverOld(t, key, p.a)
			testutil.Eventually(t, delivery, "the purge to reach Redis and b", func() bool {
				neverOld(t, key, p.a)
				_, _, onB := p.b.Get(context.Background(), key)
				return !p.inRedis(t, key) && !onB
			})
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
				neverOld(t, key, p.a, p.b)
			}
			if s := p.a.Stats(); s.PurgesDeferred != 1 || s.PurgesPending != 0 { // new API
				t.Fatalf("a's stats after one failed purge: %+v", s) // new API
			} // new API
		})
	}
}

// While a purge has not reached Redis, the node that made it does not serve
// the entry from L2 (nor promote it), although Redis still holds it; once
// Redis answers again the purge gets there and to the other node.
func TestPendingPurgeBlocksL2Reads(t *testing.T) {
	const key = "/api/users/2/profile"
	p := newProxied(t)
	p.fill(t, key)
	p.proxy.FailNext(-1, testredis.Fail, isCommand("del", p.prefix+"k:"+key))
	p.a.Delete(context.Background(), key)
	misses := p.a.Stats().L2Misses
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		neverOld(t, key, p.a)
		if !p.inRedis(t, key) {
			t.Fatal("the DEL reached Redis although the proxy fails it")
		}
	}
	if p.a.Stats().L2Misses == misses {
		t.Fatal("no read reached L2 while the purge was pending: the test proves nothing")
	}
	p.proxy.SetRule(nil)
	testutil.Eventually(t, delivery, "the purge to reach Redis and b", func() bool {
		_, _, onB := p.b.Get(context.Background(), key)
		return !p.inRedis(t, key) && !onB
	})
	neverOld(t, key, p.a, p.b)
}

// A caller whose context ends mid-purge (a client disconnecting) or before
// it cancels nothing: the purge reaches Redis and the other node.
func TestPurgeSurvivesCallerCancel(t *testing.T) {
	p := newProxied(t)
	for _, k := range []string{"/mid", "/before"} {
		p.fill(t, k)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.proxy.SetRule(func(args []string) testredis.Action {
		if isCommand("del", p.prefix+"k:/mid")(args) {
			cancel() // the client goes away while the purge is in Redis
		}
		return testredis.Forward
	})
	p.a.Delete(ctx, "/mid")
	if ctx.Err() == nil {
		t.Fatal("the purge's DEL never went through the proxy")
	}
	p.a.Delete(ctx, "/before") // already cancelled
	for _, k := range []string{"/mid", "/before"} {
		testutil.Eventually(t, delivery, k+"'s purge to reach Redis and b", func() bool {
			_, _, onB := p.b.Get(context.Background(), k)
			return !p.inRedis(t, k) && !onB
		})
		neverOld(t, k, p.a, p.b)
	}
}

// A client that disconnects while its request reads or writes Redis is not
// a Redis failure: it must not count toward opening the breaker.
func TestCallerCancelIsNotARedisFailure(t *testing.T) {
	c := newTiered(t, generous(testOptions(t, testredis.Shared(t))))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 20; i++ {
		c.Get(ctx, fmt.Sprintf("/gone/%d", i))
		_, _ = c.Set(ctx, fmt.Sprintf("/gone/%d", i), []byte("v"), time.Minute, []string{"g"}, c.Generation())
	}
	if s := c.Stats(); s.L2Errors != 0 || s.L2Down {
		t.Fatalf("cancelled callers counted as Redis failures: %+v", s)
	}
}

// Past maxPending purges waiting for Redis, every Redis entry under the
// prefix is dropped when Redis answers, and the other node drops its L1.
func TestPendingPurgeOverflowDropsL2(t *testing.T) {
	p := newProxied(t)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		p.fill(t, fmt.Sprintf("/o/%d", i))
	}
	p.proxy.FailNext(-1, testredis.Fail, func(args []string) bool { return !strings.EqualFold(args[0], "subscribe") })
	for i := 0; i <= maxPending; i++ {
		p.a.Delete(ctx, fmt.Sprintf("/x/%d", i))
	}
	if s := p.a.Stats(); s.PurgeOverflows != 1 || s.PurgesPending > maxPending+1 {
		t.Fatalf("after %d failed purges: %+v", maxPending+1, s)
	}
	for i := 0; i < 20; i++ {
		if !p.inRedis(t, fmt.Sprintf("/o/%d", i)) {
			t.Fatal("an entry left Redis while every command failed")
		}
	}
	p.proxy.SetRule(nil)
	testutil.Eventually(t, 30*time.Second, "every entry to leave Redis and b", func() bool {
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("/o/%d", i)
			if _, _, onB := p.b.Get(ctx, k); onB || p.inRedis(t, k) {
				return false
			}
		}
		return true
	})
	testutil.Eventually(t, 30*time.Second, "the queue to drain", func() bool { return p.a.Stats().PurgesPending == 0 })
}

// An entry a full tag set drops is deleted from Redis, and when that delete
// fails it is purged later: it never stays in Redis unreachable by a purge
// of its tag.
func TestTrimmedEntryPurgedWhenDeleteFails(t *testing.T) {
	p := newProxied(t)
	ro := p.ro
	ro.MaxTagMembers = 2
	c := newTiered(t, ro)
	ctx := context.Background()
	for i, ttl := range []time.Duration{time.Hour, 2 * time.Hour} {
		if ok, err := c.Set(ctx, fmt.Sprintf("/t/%d", i), []byte("v"), ttl, []string{"full"}, c.Generation()); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	p.proxy.FailNext(1, testredis.Fail, isCommand("del", p.prefix+"k:/t/0"))
	if _, err := c.Set(ctx, "/t/2", []byte("v"), 3*time.Hour, []string{"full"}, c.Generation()); err != nil {
		t.Fatal(err)
	}
	if p.proxy.Failed() != 1 {
		t.Fatalf("the proxy failed %d commands, want 1", p.proxy.Failed())
	}
	testutil.Eventually(t, delivery, "the trimmed entry to leave Redis", func() bool { return !p.inRedis(t, "/t/0") })
	if !p.inRedis(t, "/t/1") || !p.inRedis(t, "/t/2") {
		t.Fatal("the tag set's members left Redis")
	}
}

// entryWithTags returns an entry in the L1 layout carrying tags.
func entryWithTags(tags ...string) []byte {
	b := make([]byte, entryHeader)
	binary.LittleEndian.PutUint64(b, uint64(time.Now().Add(time.Hour).UnixNano()))
	binary.LittleEndian.PutUint16(b[8:], uint16(len(tags)))
	for _, t := range tags {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	return append(b, "value"...)
}

// The pending set blocks what its purges name until they are done, keeps
// its bound by handing over to one drop of everything, and puts a failed
// purge at the back of the queue.
func TestPendingPurgesSet(t *testing.T) {
	var s pendingPurges
	plain, tagged := entryWithTags(), entryWithTags("x", "user:1")
	if s.blocks("/k", tagged) {
		t.Fatal("an empty set blocks")
	}
	p := s.begin(purgeMessage{Keys: []string{"/k"}, Tags: []string{"user:1"}}, purgeMessage{})
	q := s.begin(purgeMessage{Prefix: "/api/", HasPrefix: true}, purgeMessage{})
	for _, c := range []struct {
		key   string
		entry []byte
		want  bool
	}{{"/k", plain, true}, {"/other", tagged, true}, {"/other", plain, false}, {"/api/x", plain, true}, {"/ap", plain, false}} {
		if got := s.blocks(c.key, c.entry); got != c.want {
			t.Errorf("blocks(%s, %d bytes) = %v, want %v", c.key, len(c.entry), got, c.want)
		}
	}
	s.finish(p)
	s.finish(q)
	if s.blocks("/k", tagged) || s.blocks("/api/x", plain) || s.n.Load() != 0 {
		t.Fatal("finished purges still block")
	}

	// Rotation: a failed purge goes behind the others.
	a, b := s.begin(purgeMessage{Keys: []string{"/a"}}, purgeMessage{}), s.begin(purgeMessage{Keys: []string{"/b"}}, purgeMessage{})
	s.enqueue(a)
	s.enqueue(b)
	if got, _ := s.next(); got != a {
		t.Fatal("next is not the oldest")
	}
	s.failed(a, 0)
	if got, _ := s.next(); got != b {
		t.Fatal("a failed purge was not put behind the others")
	}
	s.succeeded(b, 0)
	s.succeeded(a, 0)
	if s.len() != 0 || s.n.Load() != 0 {
		t.Fatalf("%d queued, %d pending after both succeeded", s.len(), s.n.Load())
	}

	// The bound: one more than maxPending hands over to a drop of
	// everything, which runs first and takes the queue with it; a purge
	// failing while it runs is kept.
	for i := 0; i < maxPending; i++ {
		if _, over := s.enqueue(s.begin(purgeMessage{Keys: []string{fmt.Sprint(i)}}, purgeMessage{})); over {
			t.Fatalf("overflow at %d", i)
		}
	}
	if _, over := s.enqueue(s.begin(purgeMessage{Keys: []string{"one too many"}}, purgeMessage{})); !over {
		t.Fatal("no overflow past the bound")
	}
	if !s.blocks("/anything", plain) || s.len() != maxPending+1 {
		t.Fatalf("overflowed set: blocks everything = %v, %d queued", s.blocks("/anything", plain), s.len())
	}
	all, cut := s.next()
	if cut == 0 || !all.do.HasPrefix || all.do.Prefix != "" {
		t.Fatalf("after an overflow next = %+v, cut %d; want the drop of everything", all.do, cut)
	}
	if _, over := s.enqueue(s.begin(purgeMessage{Keys: []string{"late"}}, purgeMessage{})); !over {
		t.Fatal("a purge failing while the drop runs, with the queue full, did not queue another drop")
	}
	if n := s.succeeded(all, cut); n != maxPending+1 {
		t.Fatalf("the drop of everything removed %d purges, want %d", n, maxPending+1)
	}
	if s.len() != 1 || !s.blocks("/anything", plain) {
		t.Fatalf("the later drop was lost: %d queued", s.len())
	}
	again, cut := s.next()
	s.succeeded(again, cut)
	if s.len() != 0 || s.n.Load() != 0 || s.blocks("/anything", plain) {
		t.Fatalf("%d queued, %d pending at the end", s.len(), s.n.Load())
	}
}

// Reads on the purging node while its purge is still on its way to Redis
// (the DEL held back in the proxy) read the old value there; none may put it
// back into L1, where it would outlive the purge.
func TestReadDuringPurgeDoesNotResurrect(t *testing.T) {
	for _, kind := range []string{"key", "tag"} {
		t.Run(kind, func(t *testing.T) {
			const key = "/api/users/3/profile"
			p := newProxied(t)
			ctx := context.Background()
			p.fill(t, key)
			_ = p.a.l1.Delete(key) // a reads it from Redis from now on
			p.proxy.SetRule(func(args []string) testredis.Action {
				if isCommand("del", p.prefix+"k:"+key)(args) {
					time.Sleep(200 * time.Millisecond)
				}
				return testredis.Forward
			})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if kind == "key" {
					p.a.Delete(ctx, key)
				} else {
					p.a.PurgeTags(ctx, "T")
				}
			}()
			reads := 0
			for running := true; running; reads++ {
				select {
				case <-done:
					running = false
				default:
				}
				p.a.Get(ctx, key) // concurrent with the purge: either answer
			}
			if reads < 10 {
				t.Fatalf("only %d reads during the purge", reads)
			}
			for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
				neverOld(t, key, p.a)
			}
		})
	}
}
