package tiered

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// tagMembers returns the keys Redis indexes under tag, in the sorted set and
// in a legacy (pre-sorted-set) set alike, sorted.
func tagMembers(t *testing.T, c *Cache, tag string) []string {
	t.Helper()
	ctx := context.Background()
	z, err := c.l2.client.ZRange(ctx, c.l2.prefix+"tz:"+tag, 0, -1).Result()
	if err != nil && !isWrongType(err) {
		t.Fatalf("ZRANGE %s: %v", tag, err)
	}
	s, err := c.l2.client.SMembers(ctx, c.l2.prefix+"t:"+tag).Result()
	if err != nil && !isWrongType(err) {
		t.Fatalf("SMEMBERS %s: %v", tag, err)
	}
	all := append(z, s...)
	slices.Sort(all)
	return all
}

// isWrongType reports a WRONGTYPE reply: the key holds the other kind.
func isWrongType(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") }

// tagKeyTTL returns the longest remaining lifetime of tag's keys in Redis.
func tagKeyTTL(t *testing.T, c *Cache, tag string) time.Duration {
	t.Helper()
	var longest time.Duration
	for _, k := range []string{c.l2.prefix + "tz:" + tag, c.l2.prefix + "t:" + tag} {
		d, err := c.l2.client.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		longest = max(longest, d)
	}
	return longest
}

// tagSetChecks runs the tag-set checks against the Redis (single node or
// Cluster) that ro names.
func tagSetChecks(t *testing.T, ro RedisOptions) {
	ro = generous(ro)
	ctx := context.Background()
	set := func(t *testing.T, c *Cache, key string, ttl time.Duration, tags ...string) {
		t.Helper()
		if ok, err := c.Set(ctx, key, []byte("v:"+key), ttl, tags, c.Generation()); !ok || err != nil {
			t.Fatalf("Set(%s) = %v, %v", key, ok, err)
		}
	}

	// Members whose entries expired leave the set on the next add.
	t.Run("expired members pruned", func(t *testing.T) {
		c := newTiered(t, ro)
		clk := &fakeClock{}
		clk.ns.Store(time.Now().UnixNano())
		c.now = clk.now
		set(t, c, "/a", 10*time.Second, "T")
		set(t, c, "/b", time.Hour, "T")
		clk.advance(10*time.Second + 2*time.Minute) // past /a's expiry and the clock slack
		set(t, c, "/c", time.Hour, "T")
		if got := tagMembers(t, c, "T"); !slices.Equal(got, []string{"/b", "/c"}) {
			t.Fatalf("tag T indexes %q, want [/b /c]", got)
		}
	})

	// The set lives as long as its longest-lived member, and a shorter one
	// added later never shortens it.
	t.Run("key lifetime follows the longest member", func(t *testing.T) {
		c := newTiered(t, ro)
		within := func(got, want time.Duration) bool { return got <= want && got > want-time.Minute }
		set(t, c, "/x", time.Hour, "U")
		if d := tagKeyTTL(t, c, "U"); !within(d, time.Hour) {
			t.Fatalf("after a 1 h member the tag key lives %s, want about 1 h", d)
		}
		set(t, c, "/y", 10*time.Minute, "U")
		if d := tagKeyTTL(t, c, "U"); !within(d, time.Hour) {
			t.Fatalf("a 10 min member changed the tag key's lifetime to %s, want about 1 h", d)
		}
		set(t, c, "/z", 2*time.Hour, "U")
		if d := tagKeyTTL(t, c, "U"); !within(d, 2*time.Hour) {
			t.Fatalf("after a 2 h member the tag key lives %s, want about 2 h", d)
		}
	})

	// Past the cap the soonest-expiring members go, and their entries with
	// them: no entry stays in Redis that a purge of the tag would miss.
	t.Run("bounded", func(t *testing.T) {
		const maxMembers, n = 16, 100
		bro := ro
		bro.MaxTagMembers = maxMembers
		c := newTiered(t, bro)
		for i := 0; i < n; i++ {
			set(t, c, fmt.Sprintf("/b/%03d", i), time.Hour+time.Duration(i)*time.Second, "V")
		}
		var want []string
		for i := n - maxMembers; i < n; i++ {
			want = append(want, fmt.Sprintf("/b/%03d", i))
		}
		if got := tagMembers(t, c, "V"); !slices.Equal(got, want) {
			t.Fatalf("tag V indexes %d keys %q, want the %d latest-expiring", len(got), got, maxMembers)
		}
		fresh := newTiered(t, bro) // empty L1: reads show what Redis holds
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("/b/%03d", i)
			if _, layer, ok := fresh.Get(ctx, k); ok != (i >= n-maxMembers) {
				t.Fatalf("%s in Redis = %v (%s); only tag members may stay", k, ok, layer)
			}
		}
		c.PurgeTags(ctx, "V")
		other := newTiered(t, bro)
		for i := 0; i < n; i++ {
			if _, _, ok := other.Get(ctx, fmt.Sprintf("/b/%03d", i)); ok {
				t.Fatalf("/b/%03d survived a purge of its tag in Redis", i)
			}
		}
	})

	// A Redis still holding a tag set of the previous (plain set) kind: adds
	// give no WRONGTYPE error and a purge of the tag removes its members.
	t.Run("legacy sets", func(t *testing.T) {
		c := newTiered(t, ro)
		set(t, c, "/legacy", time.Hour)
		if err := c.l2.client.SAdd(ctx, c.l2.prefix+"t:W", "/legacy").Err(); err != nil {
			t.Fatal(err)
		}
		set(t, c, "/new", time.Hour, "W")
		if s := c.Stats(); s.L2Errors != 0 {
			t.Fatalf("L2 errors with a legacy tag set present: %+v", s)
		}
		if n := c.PurgeTags(ctx, "W"); n != 2 {
			t.Fatalf("PurgeTags(W) = %d, want 2", n)
		}
		other := newTiered(t, ro)
		for _, k := range []string{"/legacy", "/new"} {
			if _, _, ok := other.Get(ctx, k); ok {
				t.Fatalf("%s survived a purge of its tag in Redis", k)
			}
		}
	})
}

func TestTagSets(t *testing.T) { onSingleAndCluster(t, tagSetChecks) }
