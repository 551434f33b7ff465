// Package tiered is Spark's two-tier byte cache: an in-process L1 on
// bigcache and an optional L2 on Redis (single node, Cluster or Sentinel),
// with lifetimes per entry, a tag index in both tiers, purges by key, tag or
// prefix that reach every node through Redis pub/sub, and purge generations
// so that a purge is never undone by a fill that was in flight when it
// happened. When Redis fails, a circuit breaker keeps every operation on L1
// alone, and a purge that did not reach Redis is retried in the background
// until it does (meanwhile L2 reads of what it names are misses). While a
// node cannot hear the other nodes' purges, L1 answers and L2 does not; when
// it hears them again (checked every 100 ms) it drops L1, as anything in it
// may have been purged meanwhile (see bus.go). It knows nothing about HTTP.
package tiered

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allegro/bigcache/v3"
	"github.com/redis/go-redis/v9"
)

// Layer names the tier that answered a lookup.
type Layer string

// Layers a lookup can be answered from.
const (
	LayerNone Layer = ""
	LayerL1   Layer = "l1"
	LayerL2   Layer = "l2"
)

// Options configure a Cache. The zero value is not usable: use DefaultOptions.
type Options struct {
	// Capacity is the most bytes L1 holds. Oldest entries are evicted first.
	Capacity int64
	// MaxEntrySize is the largest entry (key, tags and value) L1 stores.
	MaxEntrySize int
	// MaxLifetime bounds how long any entry can live, stale window included.
	MaxLifetime time.Duration
	// Redis, when set, adds the L2 tier and cross-node purges.
	Redis *RedisOptions
	// Logger receives the rare events worth a line (Redis lost and back).
	// Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock for lifetimes. Default time.Now; tests set it.
	Now func() time.Time
	// PositionWindow is how long a tag purge's position is remembered
	// (see PurgeTagsAt). Default DefaultPositionWindow.
	PositionWindow time.Duration

	// hasher replaces the seeded L1 key hash (tests make keys collide).
	hasher bigcache.Hasher
}

// DefaultOptions returns 256 MiB of L1 with 1 MiB entries living at most 31 days.
func DefaultOptions() Options {
	return Options{Capacity: 256 << 20, MaxEntrySize: 1 << 20, MaxLifetime: 31 * 24 * time.Hour}
}

// ErrTooLarge is returned by Set for an entry over Options.MaxEntrySize.
var ErrTooLarge = errors.New("tiered: entry larger than the maximum entry size")

// Cache is a tiered byte cache. It is safe for concurrent use.
type Cache struct {
	opts Options
	l1   *bigcache.BigCache
	now  func() time.Time

	// purges lets a fill find out whether a purge since it began touched
	// its entry.
	purges purgeLog
	// positions remembers where in the origin's history tags were purged.
	positions purgePositions

	mu   sync.Mutex
	tags map[string]map[string]struct{} // tag -> keys

	l2      *l2
	ps      *redis.PubSub
	breaker breaker
	// hearing is true while the purge channel subscription is up;
	// settleUntil (nanoseconds since epoch) ends the distrust of L2 after
	// it came back (see bus.go).
	hearing     atomic.Bool
	settleUntil atomic.Int64
	epoch       time.Time
	node        string // this node's id on the purge channel
	log         *slog.Logger
	stats       counters
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	// pending holds the purges that have not reached Redis yet; the
	// retrier (retry.go) runs the failed ones, woken by retryWake (new
	// work) and retryKick (Redis is back).
	pending              pendingPurges
	retryWake, retryKick chan struct{}
}

// counters are the cache's running totals, read by Stats.
type counters struct {
	l2Hits, l2Misses, l2Errors     atomic.Uint64
	purgesSent, purgesReceived     atomic.Uint64
	l1Resets, breakerOpens         atomic.Uint64
	purgesDeferred, purgeOverflows atomic.Uint64
}

// New starts a cache. Close releases it.
func New(ctx context.Context, opts Options) (*Cache, error) {
	if opts.Capacity < 1<<20 {
		return nil, fmt.Errorf("tiered: capacity %d bytes is below the 1 MiB minimum", opts.Capacity)
	}
	if opts.MaxEntrySize <= 0 || int64(opts.MaxEntrySize) > opts.Capacity/4 {
		return nil, fmt.Errorf("tiered: max entry size %d must be positive and at most a quarter of the capacity (%d)", opts.MaxEntrySize, opts.Capacity)
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultOptions().MaxLifetime
	}
	c := &Cache{opts: opts, now: opts.Now, tags: make(map[string]map[string]struct{}), log: opts.Logger}
	c.positions.window, c.positions.max = opts.PositionWindow, maxPositions
	if c.positions.window <= 0 {
		c.positions.window = DefaultPositionWindow
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	cfg := bigcache.DefaultConfig(opts.MaxLifetime)
	cfg.Shards = shardCount(opts.Capacity, opts.MaxEntrySize)
	cfg.HardMaxCacheSize = int(opts.Capacity >> 20)
	// Shards start at their full size: a bigcache shard that grows copies
	// itself into a new array under its lock, which stalled every request
	// on the shard for seconds on a VM with costly page faults (3.2 s
	// filling 400 MiB). Untouched pages cost nothing until written.
	cfg.MaxEntrySize = 1024
	cfg.MaxEntriesInWindow = int(opts.Capacity / 1024)
	cfg.CleanWindow = time.Minute
	cfg.Verbose = false
	cfg.OnRemoveWithReason = c.onRemove
	cfg.Hasher = opts.hasher
	if cfg.Hasher == nil {
		cfg.Hasher = NewKeyHasher()
	}
	l1, err := bigcache.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tiered: start L1: %w", err)
	}
	c.l1 = l1
	if opts.Redis != nil {
		if err := c.startL2(*opts.Redis); err != nil {
			_ = l1.Close()
			return nil, err
		}
	}
	return c, nil
}

// shardCount picks the most shards (up to 256) that each still hold at
// least four maximum-size entries, since bigcache splits capacity evenly.
func shardCount(capacity int64, maxEntry int) int {
	n := 256
	for n > 1 && capacity/int64(n) < 4*int64(maxEntry+64) {
		n /= 2
	}
	return n
}

// Close stops background work, makes a last short attempt at the purges
// that have not reached Redis, closes the Redis client and frees L1.
func (c *Cache) Close() error {
	if c.l2 != nil {
		c.cancel()
		_ = c.ps.Close() // unblocks the subscriber's read
		c.wg.Wait()
		c.flushPending()
		err := c.l2.close()
		return errors.Join(err, c.l1.Close())
	}
	return c.l1.Close()
}

// Generation returns the purge sequence number. Pass it to Set: an entry whose fill
// started before a purge is not stored.
func (c *Cache) Generation() uint64 { return c.purges.seq.Load() }

// Entry layout: expiry (unix nanoseconds, 8 bytes), tag count (2 bytes), tags
// each as 2-byte length + bytes, then the value.
const entryHeader = 10

// Entry is a stored value with its expiry and the tier that answered.
type Entry struct {
	Value   []byte // the caller's own copy
	Expires time.Time
	Layer   Layer
}

// Get returns the value stored under key and the layer that had it. An L1
// miss reads L2 and promotes what it finds into L1, unless a purge naming
// it has not reached Redis yet (then it is a miss). The returned slice is
// the caller's own.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, Layer, bool) {
	e, ok := c.GetEntry(ctx, key)
	return e.Value, e.Layer, ok
}

// GetEntry is Get with the entry's expiry, for callers that keep a decoded
// copy of the value (see PurgedSince) and must not keep it longer.
func (c *Cache) GetEntry(ctx context.Context, key string) (Entry, bool) {
	if b, err := c.l1.Get(key); err == nil {
		if v, ok := c.unwrap(b); ok {
			return Entry{Value: v, Expires: entryExpiry(b), Layer: LayerL1}, true
		}
	}
	if c.l2 == nil || !c.breaker.allow() || !c.l2Trusted() {
		return Entry{}, false
	}
	gen := c.Generation()
	b, ok, err := c.l2.get(ctx, key)
	if err != nil {
		if ctx.Err() == nil { // a caller that went away is no Redis failure
			c.l2Failed(err)
		}
		return Entry{}, false
	}
	c.breaker.success()
	v, fresh := c.unwrap(b)
	// Checked after the read: a purge pending at any time since is either
	// still pending here or recorded as done in the purge log, which
	// promote checks.
	if !ok || !fresh || c.pending.blocks(key, b) {
		c.stats.l2Misses.Add(1)
		return Entry{}, false
	}
	c.stats.l2Hits.Add(1)
	c.promote(key, b, gen)
	return Entry{Value: v, Expires: entryExpiry(b), Layer: LayerL2}, true
}

// PurgedSince reports whether a purge recorded after generation gen (see
// Generation) touched key or any of tags, here or, through Redis, on another
// node; also true when more purges happened since gen than the cache
// remembers, or when L1 was reset. A caller holding a decoded copy of an
// entry, read at gen, uses it to know when the copy went stale.
func (c *Cache) PurgedSince(gen uint64, key string, tags []string) bool {
	return c.purges.affects(gen, key, tags)
}

// entryExpiry reads the expiry of an entry unwrap accepted.
func entryExpiry(b []byte) time.Time {
	return time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
}

// unwrap checks an entry's expiry and returns its value.
func (c *Cache) unwrap(b []byte) ([]byte, bool) {
	if len(b) < entryHeader || int64(binary.LittleEndian.Uint64(b)) <= c.now().UnixNano() {
		return nil, false
	}
	off := entryHeader
	for n := int(binary.LittleEndian.Uint16(b[8:])); n > 0; n-- {
		if off+2 > len(b) {
			return nil, false
		}
		off += 2 + int(binary.LittleEndian.Uint16(b[off:]))
	}
	if off > len(b) {
		return nil, false
	}
	return b[off:], true
}

// entryTags returns the tags of an entry.
func entryTags(b []byte) []string {
	tr := newTagReader(b)
	tags := make([]string, 0, tr.n)
	for t, ok := tr.next(); ok; t, ok = tr.next() {
		tags = append(tags, string(t))
	}
	return tags
}

// promote copies an L2 entry into L1, unless a purge happened meanwhile.
func (c *Cache) promote(key string, b []byte, gen uint64) {
	if len(b) > c.opts.MaxEntrySize {
		return
	}
	if c.storeL1(key, b) != nil {
		return
	}
	c.indexEntry(key, b) // after the store, as in Set
	// The tags are decoded only when a purge happened since gen: an L2 hit
	// allocates nothing for them otherwise.
	if c.Generation() != gen && c.purges.affects(gen, key, entryTags(b)) {
		_ = c.l1.Delete(key)
	}
}

// Set stores value under key for ttl, indexed under tags. gen is the value of
// Generation taken when the fill began; if a purge of key or of one of tags
// happened since (or more purges than the cache remembers), Set stores
// nothing and reports false. Purges of other entries do not matter.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration, tags []string, gen uint64) (bool, error) {
	if ttl <= 0 || c.purges.affects(gen, key, tags) {
		return false, nil
	}
	if ttl > c.opts.MaxLifetime {
		ttl = c.opts.MaxLifetime
	}
	size := entryHeader + len(key) + len(value)
	for _, t := range tags {
		if len(t) > 0xffff {
			return false, fmt.Errorf("tiered: tag of %d bytes is too long", len(t))
		}
		size += 2 + len(t)
	}
	if size > c.opts.MaxEntrySize || len(tags) > 0xffff {
		return false, ErrTooLarge
	}
	now := c.now()
	b := make([]byte, entryHeader, size)
	binary.LittleEndian.PutUint64(b, uint64(now.Add(ttl).UnixNano()))
	binary.LittleEndian.PutUint16(b[8:], uint16(len(tags)))
	for _, t := range tags {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	b = append(b, value...)

	if err := c.storeL1(key, b); err != nil {
		return false, fmt.Errorf("tiered: store %q in L1: %w", key, err)
	}
	// Index only once stored: indexed first, a concurrent delete of an older
	// entry under this key would drop the index entry (onRemove) just before
	// this one is stored, leaving it unreachable by tag purges. A purge
	// between here and the store is caught by the generation check below.
	c.index(key, tags)
	// Not while this node cannot hear purges: a fill that read the origin
	// before another node's write, stored after that node's purge, would
	// stay in Redis with no purge of ours to follow it (see bus.go).
	if c.l2 != nil && c.breaker.allow() && c.hearing.Load() {
		// Not cancelled with the caller: the entry is good, and a client
		// that went away is no Redis failure.
		orphans, err := c.l2.set(context.WithoutCancel(ctx), key, b, ttl, tags, now)
		if err != nil {
			c.l2Failed(err)
		} else {
			c.breaker.success()
		}
		if len(orphans) > 0 {
			// Entries a full tag set dropped, still in Redis: no purge of
			// the tag would find them.
			c.purge(ctx, purgeMessage{Keys: orphans})
		}
	}
	// A purge that began after the check above may have missed this entry.
	if c.purges.affects(gen, key, tags) {
		if c.l2 == nil {
			_ = c.l1.Delete(key)
		} else {
			// It may be in L2, and another node may have read it from
			// there meanwhile: purge it everywhere.
			c.purge(ctx, purgeMessage{Keys: []string{key}})
		}
		return false, nil
	}
	return true, nil
}

// Delete removes keys from every tier and every node, and returns how many
// were present.
func (c *Cache) Delete(ctx context.Context, keys ...string) int {
	return c.purge(ctx, purgeMessage{Keys: keys})
}

// PurgeTags removes every entry indexed under any of tags, in every tier and
// on every node, and returns how many entries were removed.
func (c *Cache) PurgeTags(ctx context.Context, tags ...string) int {
	return c.purge(ctx, purgeMessage{Tags: tags})
}

// PurgePrefix removes every entry whose key starts with prefix, in every
// tier and on every node. It walks all of L1 and scans Redis: use it for
// rare administrative purges, not on a request path.
func (c *Cache) PurgePrefix(ctx context.Context, prefix string) int {
	return c.purge(ctx, purgeMessage{Prefix: prefix, HasPrefix: true})
}

// purge applies m here, in L2, and on the other nodes. Its Redis part runs
// detached from ctx's cancellation and, if it fails (or the breaker is
// open), is retried in the background until it gets through; until then
// L2 reads of what m names are misses (see pendingPurges).
func (c *Cache) purge(ctx context.Context, m purgeMessage) int {
	if c.l2 == nil {
		return purgedCount(c.purgeLocal(m))
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	p := c.pending.begin(m, m) // before purgeLocal records it
	removed := c.purgeLocal(m)
	if !c.breaker.allow() {
		p.do = withKeys(m, removed)
		c.deferPurge(p, errBreakerOpen)
		return purgedCount(removed)
	}
	n, err := c.purgeL2(ctx, m, removed)
	if err == nil {
		err = c.publish(ctx, m)
	}
	if err != nil {
		c.l2Failed(err)
		p.do = withKeys(m, removed)
		c.deferPurge(p, err)
		return purgedCount(removed)
	}
	c.purges.record(m, false) // reached Redis: see pendingPurges
	c.pending.finish(p)
	return n
}

// purgeLocal removes from L1 what m names and returns the keys L1 held
// (for tags, also the keys indexed locally, present or not).
func (c *Cache) purgeLocal(m purgeMessage) map[string]bool {
	c.positions.record(m.At, m.Tags, c.now()) // before the entries go: a fill then finds one or the other
	c.purges.record(m, false)
	keys := append([]string(nil), m.Keys...)
	if len(m.Tags) > 0 {
		c.mu.Lock()
		for _, t := range m.Tags {
			for k := range c.tags[t] {
				keys = append(keys, k)
			}
			delete(c.tags, t)
		}
		c.mu.Unlock()
	}
	if m.HasPrefix {
		it := c.l1.Iterator()
		for it.SetNext() {
			if info, err := it.Value(); err == nil && strings.HasPrefix(info.Key(), m.Prefix) {
				keys = append(keys, info.Key())
			}
		}
	}
	removed := make(map[string]bool, len(keys))
	for _, k := range keys {
		if c.l1.Delete(k) == nil {
			removed[k] = true
		} else if !removed[k] {
			removed[k] = false // named, absent here: still deleted from L2
		}
	}
	return removed
}

// purgedCount counts the entries L1 actually held.
func purgedCount(removed map[string]bool) int {
	n := 0
	for _, present := range removed {
		if present {
			n++
		}
	}
	return n
}

// purgeL2 removes from Redis what m names plus the keys L1 named, and
// returns how many distinct entries were removed from either tier.
func (c *Cache) purgeL2(ctx context.Context, m purgeMessage, local map[string]bool) (int, error) {
	var more []string
	var err error
	if len(m.Tags) > 0 {
		more, err = c.l2.takeTags(ctx, m.Tags...)
		if err != nil {
			return purgedCount(local), err
		}
	}
	if m.HasPrefix {
		pk, err := c.l2.keysWithPrefix(ctx, m.Prefix)
		if err != nil {
			return purgedCount(local), err
		}
		more = append(more, pk...)
	}
	for _, k := range more {
		if _, ok := local[k]; !ok {
			local[k] = false
		}
	}
	all := make([]string, 0, len(local))
	for k := range local {
		all = append(all, k)
	}
	inL2, err := c.l2.delEach(ctx, all)
	n := 0
	for i, k := range all {
		if local[k] || i < len(inL2) && inL2[i] {
			n++
		}
	}
	return n, err
}

// Stats describes the cache's contents and its running totals.
type Stats struct {
	Entries int // entries in L1
	Bytes   int // bytes L1's queues hold

	L2Hits, L2Misses, L2Errors uint64
	L2Down                     bool // the breaker is open: L1 only
	// PurgeChannelDown is true while this node does not hear the other
	// nodes' purges (its subscription is down): L1 still answers, L2 does
	// not, and L1 is dropped when the subscription is back.
	PurgeChannelDown           bool
	PurgesSent, PurgesReceived uint64
	L1Resets, BreakerOpens     uint64

	// PurgesDeferred counts purges whose Redis part failed (or found the
	// breaker open) and went to the background retrier.
	PurgesDeferred uint64
	// PurgesPending is how many of those have not reached Redis yet.
	PurgesPending int
	// PurgeOverflows counts the times more than 10,000 purges waited for
	// Redis, so that every Redis entry was to be dropped instead.
	PurgeOverflows uint64
}

// Stats returns the cache's contents and totals.
func (c *Cache) Stats() Stats {
	return Stats{
		Entries: c.l1.Len(), Bytes: c.l1.Capacity(),
		L2Hits: c.stats.l2Hits.Load(), L2Misses: c.stats.l2Misses.Load(), L2Errors: c.stats.l2Errors.Load(),
		L2Down:           c.l2 != nil && !c.breaker.allow(),
		PurgeChannelDown: c.l2 != nil && !c.hearing.Load(),
		PurgesSent:       c.stats.purgesSent.Load(), PurgesReceived: c.stats.purgesReceived.Load(),
		L1Resets: c.stats.l1Resets.Load(), BreakerOpens: c.stats.breakerOpens.Load(),
		PurgesDeferred: c.stats.purgesDeferred.Load(), PurgesPending: c.pending.len(),
		PurgeOverflows: c.stats.purgeOverflows.Load(),
	}
}

// HasL2 reports whether the cache has a Redis tier.
func (c *Cache) HasL2() bool { return c.l2 != nil }

// Capacity returns the most bytes L1 holds.
func (c *Cache) Capacity() int64 { return c.opts.Capacity }
