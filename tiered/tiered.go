// Package tiered is Spark's byte cache: an in-process L1 on bigcache with a
// tag index, lifetimes per entry and purge generations so that a purge is
// never undone by a fill that was in flight when it happened. It knows
// nothing about HTTP.
package tiered

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allegro/bigcache/v3"
)

// Layer names the tier that answered a lookup.
type Layer string

// Layers a lookup can be answered from.
const (
	LayerNone Layer = ""
	LayerL1   Layer = "l1"
)

// Options configure a Cache. The zero value is not usable: use DefaultOptions.
type Options struct {
	// Capacity is the most bytes L1 holds. Oldest entries are evicted first.
	Capacity int64
	// MaxEntrySize is the largest entry (key, tags and value) L1 stores.
	MaxEntrySize int
	// MaxLifetime bounds how long any entry can live, stale window included.
	MaxLifetime time.Duration
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

	// gen counts purges; a fill that saw another generation must not store.
	gen atomic.Uint64

	mu   sync.Mutex
	tags map[string]map[string]struct{} // tag -> keys
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
	c := &Cache{opts: opts, now: time.Now, tags: make(map[string]map[string]struct{})}
	cfg := bigcache.DefaultConfig(opts.MaxLifetime)
	cfg.Shards = shardCount(opts.Capacity, opts.MaxEntrySize)
	cfg.HardMaxCacheSize = int(opts.Capacity >> 20)
	cfg.MaxEntrySize = 1024
	cfg.MaxEntriesInWindow = int(opts.Capacity / 4096)
	cfg.CleanWindow = time.Minute
	cfg.Verbose = false
	cfg.OnRemoveWithReason = c.onRemove
	l1, err := bigcache.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tiered: start L1: %w", err)
	}
	c.l1 = l1
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

// Close stops background work and frees L1.
func (c *Cache) Close() error { return c.l1.Close() }

// Generation returns the purge generation. Pass it to Set: an entry whose fill
// started before a purge is not stored.
func (c *Cache) Generation() uint64 { return c.gen.Load() }

// Entry layout: expiry (unix nanoseconds, 8 bytes), tag count (2 bytes), tags
// each as 2-byte length + bytes, then the value.
const entryHeader = 10

// Get returns the value stored under key and the layer that had it. The
// returned slice is the caller's own.
func (c *Cache) Get(_ context.Context, key string) ([]byte, Layer, bool) {
	b, err := c.l1.Get(key)
	if err != nil || len(b) < entryHeader {
		return nil, LayerNone, false
	}
	if int64(binary.LittleEndian.Uint64(b)) <= c.now().UnixNano() {
		return nil, LayerNone, false
	}
	off := entryHeader
	for n := int(binary.LittleEndian.Uint16(b[8:])); n > 0; n-- {
		if off+2 > len(b) {
			return nil, LayerNone, false
		}
		off += 2 + int(binary.LittleEndian.Uint16(b[off:]))
	}
	if off > len(b) {
		return nil, LayerNone, false
	}
	return b[off:], LayerL1, true
}

// Set stores value under key for ttl, indexed under tags. gen is the value of
// Generation taken when the fill began; if a purge happened since, Set stores
// nothing and reports false.
func (c *Cache) Set(_ context.Context, key string, value []byte, ttl time.Duration, tags []string, gen uint64) (bool, error) {
	if ttl <= 0 || c.gen.Load() != gen {
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
	b := make([]byte, entryHeader, size)
	binary.LittleEndian.PutUint64(b, uint64(c.now().Add(ttl).UnixNano()))
	binary.LittleEndian.PutUint16(b[8:], uint16(len(tags)))
	for _, t := range tags {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	b = append(b, value...)

	if err := c.l1.Set(key, b); err != nil {
		return false, fmt.Errorf("tiered: store %q in L1: %w", key, err)
	}
	// Index only once stored: indexed first, a concurrent delete of an older
	// entry under this key would drop the index entry (onRemove) just before
	// this one is stored, leaving it unreachable by tag purges. A purge
	// between here and the store is caught by the generation check below.
	if len(tags) > 0 {
		c.mu.Lock()
		for _, t := range tags {
			keys := c.tags[t]
			if keys == nil {
				keys = make(map[string]struct{})
				c.tags[t] = keys
			}
			keys[key] = struct{}{}
		}
		c.mu.Unlock()
	}
	// A purge that began after the check above may have missed this entry.
	if c.gen.Load() != gen {
		_ = c.l1.Delete(key)
		return false, nil
	}
	return true, nil
}

// Delete removes keys and returns how many were present.
func (c *Cache) Delete(_ context.Context, keys ...string) int {
	c.gen.Add(1)
	n := 0
	for _, k := range keys {
		if c.l1.Delete(k) == nil {
			n++
		}
	}
	return n
}

// PurgeTags removes every entry indexed under any of tags and returns how
// many entries were removed.
func (c *Cache) PurgeTags(ctx context.Context, tags ...string) int {
	c.gen.Add(1)
	var keys []string
	c.mu.Lock()
	for _, t := range tags {
		for k := range c.tags[t] {
			keys = append(keys, k)
		}
		delete(c.tags, t)
	}
	c.mu.Unlock()
	return c.Delete(ctx, keys...)
}

// PurgeFunc removes every entry whose key satisfies match and returns how
// many were removed. It walks all of L1: use it for rare administrative
// purges, not on a request path.
func (c *Cache) PurgeFunc(ctx context.Context, match func(key string) bool) int {
	c.gen.Add(1)
	var keys []string
	it := c.l1.Iterator()
	for it.SetNext() {
		info, err := it.Value()
		if err != nil {
			continue
		}
		if match(info.Key()) {
			keys = append(keys, info.Key())
		}
	}
	return c.Delete(ctx, keys...)
}

// PurgePrefix removes every entry whose key starts with prefix.
func (c *Cache) PurgePrefix(ctx context.Context, prefix string) int {
	return c.PurgeFunc(ctx, func(k string) bool { return strings.HasPrefix(k, prefix) })
}

// Stats describes what L1 holds.
type Stats struct {
	Entries int
	Bytes   int
}

// Stats returns the number of entries in L1 and the bytes its queues use.
func (c *Cache) Stats() Stats { return Stats{Entries: c.l1.Len(), Bytes: c.l1.Capacity()} }

// onRemove drops an evicted or deleted key from the tag index. bigcache calls
// it with a shard lock held, so it only takes c.mu, which is never held while
// calling into bigcache.
func (c *Cache) onRemove(key string, b []byte, _ bigcache.RemoveReason) {
	if len(b) < entryHeader {
		return
	}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	if n == 0 {
		return
	}
	off := entryHeader
	c.mu.Lock()
	defer c.mu.Unlock()
	for ; n > 0 && off+2 <= len(b); n-- {
		l := int(binary.LittleEndian.Uint16(b[off:]))
		off += 2
		if off+l > len(b) {
			return
		}
		t := string(b[off : off+l])
		off += l
		if keys := c.tags[t]; keys != nil {
			delete(keys, key)
			if len(keys) == 0 {
				delete(c.tags, t)
			}
		}
	}
}
