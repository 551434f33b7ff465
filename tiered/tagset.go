package tiered

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis tag sets. A tag purge must find every entry Redis holds under the
// tag, so each tag has a sorted set (key prefix+"tz:"+tag) of the keys of
// its entries, scored by each entry's expiry (unix milliseconds). Plain sets
// whose 31-day expiry every add renewed grew for as long as a tag was in use,
// since only purges removed members; an anonymous client making variants of
// a tagged response grew them without bound. Now every add, in the entry's
// own pipeline, for each tag:
//
//   - ZADD the key with its expiry;
//   - ZREMRANGEBYSCORE drops the members that expired, more than
//     tagClockSlack ago by this edge's clock, so an edge whose clock runs
//     ahead does not drop members whose entries are still alive;
//   - PEXPIRE NX, then PEXPIRE GT, with the entry's lifetime: the set lives
//     as long as its longest-lived member and an add never shortens it (GT
//     alone would not set a lifetime on a set that has none yet). Needs
//     Redis 7.0;
//   - ZCARD. Past the cap (RedisOptions.MaxTagMembers) ZPOPMIN removes the
//     soonest-expiring members and their entries are deleted from Redis in a
//     second round trip. The cap costs L2 hits on those entries, never a
//     purge: no entry stays in Redis that a purge of its tag would miss
//     (an L1 copy on any edge is indexed by that edge and purged there). If
//     that delete fails, the keys are purged like any other key.
//
// Every command names one key, so a Redis Cluster needs no cross-slot
// operation. The new key name ("tz:" for the sorted set, "t:" before) keeps a
// Redis holding old sets from answering WRONGTYPE; a purge also takes the
// old set of each tag, so entries indexed before an upgrade are still
// purged. The old sets expire on their own 31 days after their last add; the
// legacy read can go once every edge has run this version that long.

// tagClockSlack is how long past its expiry, by the pruning edge's clock, a
// member stays in its tag set: the tolerated clock difference between edges.
const tagClockSlack = time.Minute

func (r *l2) tagSetKey(t string) string    { return r.prefix + "tz:" + t }
func (r *l2) legacyTagKey(t string) string { return r.prefix + "t:" + t }

// addToTags queues on p the commands that index key, stored now for ttl,
// under tags, and returns each tag set's cardinality reply for trimTags.
func (r *l2) addToTags(ctx context.Context, p redis.Pipeliner, key string, tags []string, ttl time.Duration, now time.Time) []*redis.IntCmd {
	if len(tags) == 0 {
		return nil
	}
	score := float64(now.Add(ttl).UnixMilli())
	pruneTo := strconv.FormatInt(now.Add(-tagClockSlack).UnixMilli(), 10)
	ms := max(ttl.Milliseconds(), 1)
	cards := make([]*redis.IntCmd, len(tags))
	for i, t := range tags {
		k := r.tagSetKey(t)
		p.ZAdd(ctx, k, redis.Z{Score: score, Member: key})
		p.ZRemRangeByScore(ctx, k, "-inf", pruneTo)
		p.Do(ctx, "pexpire", k, ms, "nx")
		p.Do(ctx, "pexpire", k, ms, "gt")
		cards[i] = p.ZCard(ctx, k)
	}
	return cards
}

// trimTags brings every tag set over the cap back to it: it pops the
// soonest-expiring members and deletes their entries. It returns the popped
// keys whose entries it could not delete: the caller must purge them, since
// no tag set names them any more.
func (r *l2) trimTags(ctx context.Context, tags []string, cards []*redis.IntCmd) ([]string, error) {
	limit := int64(r.maxTagMembers)
	type over struct {
		tag    string
		excess int64
	}
	var todo []over
	for i, c := range cards {
		if n := c.Val(); n > limit {
			todo = append(todo, over{tags[i], n - limit})
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	pops := make([]*redis.ZSliceCmd, len(todo))
	_, popErr := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, o := range todo {
			pops[i] = p.ZPopMin(ctx, r.tagSetKey(o.tag), o.excess)
		}
		return nil
	})
	var popped []string
	for _, c := range pops {
		for _, z := range c.Val() {
			if k, ok := z.Member.(string); ok {
				popped = append(popped, k)
			}
		}
	}
	if popErr != nil {
		popErr = fmt.Errorf("redis trim tag sets: %w", popErr)
	}
	if len(popped) == 0 {
		return nil, popErr
	}
	if _, err := r.delEach(ctx, popped); err != nil {
		return popped, errors.Join(popErr, fmt.Errorf("delete entries past a tag set's cap: %w", err))
	}
	return nil, popErr
}

// takeTags returns the keys indexed under tags and deletes the tag sets,
// the legacy ones included.
func (r *l2) takeTags(ctx context.Context, tags ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*r.opTO)
	defer cancel()
	cmds := make([]*redis.StringSliceCmd, 0, 2*len(tags))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tags {
			cmds = append(cmds, p.ZRange(ctx, r.tagSetKey(t), 0, -1))
			p.Del(ctx, r.tagSetKey(t))
			cmds = append(cmds, p.SMembers(ctx, r.legacyTagKey(t)))
			p.Del(ctx, r.legacyTagKey(t))
		}
		return nil
	})
	var keys []string
	for _, c := range cmds {
		keys = append(keys, c.Val()...)
	}
	if err != nil {
		return keys, fmt.Errorf("redis tag members: %w", err)
	}
	return keys, nil
}
