package cache

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/tiered"
)

// hotEntries keeps decoded copies of the L1 records hits were served from,
// so that the next hit on them skips the store (bigcache copies every value
// and its key on each read) and the decoding: a hit from here costs one
// allocation, the response's own header values.
//
// A copy is only a faster way to read what L1 holds, never more: it is
// used while its store expiry has not passed and no purge since the
// generation it was read at names its key or tags (tiered.PurgedSince, the
// check geocache's decoded copies use too), and it is dropped when this
// edge stores a record under its key (forget). Inserts that raced with a
// store are refused (see sets). Only fresh hits are served from here;
// anything else (stale, revalidation, deny lists, only-if-cached) takes
// the store path, which reads L1 again.
type hotEntries struct {
	shards [hotShards]hotShard
	hash   tiered.KeyHasher // picks a key's shard
	// budget is the most bytes of records each shard keeps.
	budget int64
	// sets counts stores (forget calls): an insert whose read began before
	// a store is refused, as the store may have replaced what it read.
	sets atomic.Uint64
	// accessLogged is set once a server with access logs made a copy: the
	// fast path, which writes no access log, then stands aside.
	accessLogged atomic.Bool
}

const hotShards = 16

// maxHotBudget bounds the copies of a large cache.
const maxHotBudget = 32 << 20

type hotShard struct {
	mu    sync.RWMutex
	m     map[string]*hotEntry
	bytes int64
	_     [32]byte // keeps shards' locks on separate cache lines
}

// hotEntry is a decoded record: a response (e) or a Vary record (vary,
// private). It is immutable but for its atomics.
type hotEntry struct {
	key  string
	size int64

	e      *entry // header decoded into e.header, layer L1
	nvals  int    // header values of e
	isVary bool
	vary   []string
	priv   bool

	expires int64    // the store's expiry, unix nanoseconds
	tags    []string // the tags purges name it by
	// gen is a purge generation up to which no purge named it.
	gen atomic.Uint64
	// served holds the Age, Cache-Status and Content-Length of the last
	// second it was served in.
	served atomic.Pointer[servedMemo]
	// wire is the response's header block as the fast path writes it,
	// built on its first use there.
	wire atomic.Pointer[fastWire]
}

// servedMemo is the per-response values of a hot entry for one age.
type servedMemo struct {
	ageSec, ttl       int64
	str               string // Age, Cache-Status, Content-Length, concatenated
	ageEnd, statusEnd int
}

// newHotEntries returns copies for an L1 of capacity bytes: an eighth of
// it, at most maxHotBudget.
func newHotEntries(capacity int64) *hotEntries {
	h := &hotEntries{budget: min(capacity/8, maxHotBudget) / hotShards, hash: tiered.NewKeyHasher()}
	for i := range h.shards {
		h.shards[i].m = make(map[string]*hotEntry)
	}
	return h
}

// shard picks the shard of a key.
func (h *hotEntries) shard(key []byte) *hotShard {
	return &h.shards[h.hash.SumBytes(key)%hotShards]
}

// peek returns the copy stored under key, unchecked.
func (h *hotEntries) peek(key []byte) *hotEntry {
	s := h.shard(key)
	s.mu.RLock()
	he := s.m[string(key)]
	s.mu.RUnlock()
	return he
}

// get returns the copy stored under key if it is still valid at now,
// given the store (expiry, purges); an invalid copy is dropped.
func (h *hotEntries) get(store *tiered.Cache, key []byte, now time.Time) *hotEntry {
	s := h.shard(key)
	s.mu.RLock()
	he := s.m[string(key)]
	s.mu.RUnlock()
	if he == nil {
		return nil
	}
	if he.expires <= now.UnixNano() {
		h.drop(s, he)
		return nil
	}
	if g, cur := he.gen.Load(), store.Generation(); g != cur {
		if store.PurgedSince(g, he.key, he.tags) {
			h.drop(s, he)
			return nil
		}
		he.gen.CompareAndSwap(g, cur)
	}
	return he
}

// drop removes he if it is still the copy under its key.
func (h *hotEntries) drop(s *hotShard, he *hotEntry) {
	s.mu.Lock()
	if s.m[he.key] == he {
		delete(s.m, he.key)
		s.bytes -= he.size
	}
	s.mu.Unlock()
}

// forget drops the copy under key: this edge is storing a new record
// there.
func (h *hotEntries) forget(key string) {
	h.sets.Add(1)
	s := h.shard([]byte(key))
	s.mu.Lock()
	if he := s.m[key]; he != nil {
		delete(s.m, key)
		s.bytes -= he.size
	}
	s.mu.Unlock()
}

// put stores he unless a store happened since sets was read (before the
// read he was decoded from) or there is no room for it. Copies are not
// evicted to make room: with a working set larger than the budget that
// would turn every hit into a copy and an eviction; instead a full shard
// drops a few expired copies it meets, and copies leave on expiry, purge
// or store.
func (h *hotEntries) put(he *hotEntry, sets uint64) {
	if he.size > h.budget/4 {
		return
	}
	s := h.shard([]byte(he.key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.sets.Load() != sets {
		return
	}
	old := s.m[he.key]
	if old != nil {
		s.bytes -= old.size
		delete(s.m, he.key)
	}
	if s.bytes+he.size > h.budget {
		now, seen := time.Now().UnixNano(), 0
		for k, v := range s.m {
			if seen++; seen > 8 {
				break
			}
			if v.expires <= now {
				delete(s.m, k)
				s.bytes -= v.size
			}
		}
		if s.bytes+he.size > h.budget {
			return
		}
	}
	s.m[he.key] = he
	s.bytes += he.size
}

// admits reports whether put could keep a copy of size bytes under key
// for a read that began at sets, so that a copy is only built when it can
// be kept.
func (h *hotEntries) admits(key string, size int64, sets uint64) bool {
	if size > h.budget/4 || h.sets.Load() != sets {
		return false
	}
	s := h.shard([]byte(key))
	s.mu.RLock()
	ok := s.bytes+size <= h.budget || s.m[key] != nil
	s.mu.RUnlock()
	return ok
}

// hotOverhead approximates a copy's memory beside its bytes.
const hotOverhead = 256

// newHotResponse makes the copy of a response found under key, read at
// purge generation gen, expiring (in the store) at expires. tags are the
// tags it was stored under.
func newHotResponse(key string, e *entry, expires time.Time, gen uint64, tags []string) *hotEntry {
	c := *e
	c.layer = tiered.LayerL1
	// The copy's header is its own, decoded once and never written again:
	// e's (or its decoded values) go into the response e is served in.
	if e.raw.values != nil {
		raw := rawHeader{block: e.raw.block, values: make([]string, len(e.raw.values))}
		c.header = make(http.Header, len(raw.values))
		raw.decodeInto(c.header)
	} else {
		c.header = e.header.Clone()
	}
	c.raw = rawHeader{}
	he := &hotEntry{key: key, e: &c, expires: expires.UnixNano(), tags: tags}
	size := int64(len(key) + len(c.body) + len(c.deny) + len(c.tagBlock) + hotOverhead)
	for name, vs := range c.header {
		he.nvals += len(vs)
		size += int64(len(name))
		for _, v := range vs {
			size += int64(len(v)) + 16
		}
	}
	he.size = size
	he.gen.Store(gen)
	return he
}

// newHotVary makes the copy of a Vary record.
func newHotVary(key string, fields []string, private bool, expires time.Time, gen uint64) *hotEntry {
	he := &hotEntry{key: key, isVary: true, vary: append([]string(nil), fields...), priv: private, expires: expires.UnixNano()}
	he.size = int64(len(key) + hotOverhead)
	for _, f := range fields {
		he.size += int64(len(f)) + 16
	}
	he.gen.Store(gen)
	return he
}

// servedFor returns the per-response values of a fresh hit at age with
// ttl seconds left, reusing those of the last hit in the same second.
func (he *hotEntry) servedFor(age time.Duration, ttl int64) *servedMemo {
	ageSec := int64(age / time.Second)
	if m := he.served.Load(); m != nil && m.ageSec == ageSec && m.ttl == ttl {
		return m
	}
	var buf [96]byte
	b := strconv.AppendInt(buf[:0], ageSec, 10)
	m := &servedMemo{ageSec: ageSec, ttl: ttl, ageEnd: len(b)}
	s := cacheStatus{ttl: ttl, layer: tiered.LayerL1}
	b = s.appendTo(b)
	m.statusEnd = len(b)
	b = strconv.AppendInt(b, int64(len(he.e.body)), 10)
	m.str = string(b)
	he.served.Store(m)
	return m
}

// servedStatus is a hit's Cache-Status as the {http.spark_cache.status}
// placeholder's value: a pointer into the response's values, which costs
// no allocation in an interface.
type servedStatus string

// String returns the Cache-Status value.
func (s *servedStatus) String() string { return string(*s) }

// serveHot writes a fresh hit from a hot copy. The response gets its own
// header value slices (one allocation: later handlers may edit values in
// place, as Caddy's header replacements do), whose strings are the copy's.
func (x *exchange) serveHot(he *hotEntry, age time.Duration) {
	e := he.e
	m := he.servedFor(age, ttlSeconds(e, age))
	notMod := e.status == http.StatusOK && conditional(x.r) && notModified(x.r, e.header)
	h := x.w.Header()
	vals := make([]string, 3+he.nvals)
	vals[0], vals[1], vals[2] = m.str[:m.ageEnd], m.str[m.ageEnd:m.statusEnd], m.str[m.statusEnd:]
	room := vals[3:]
	for name, vs := range e.header {
		n := copy(room, vs)
		h[name] = room[:n:n]
		room = room[n:]
	}
	h["Age"] = vals[0:1:1]
	h[contract.CacheStatus] = vals[1:2:2]
	if x.repl != nil {
		x.repl.Set(placeholderStatus, (*servedStatus)(&vals[1]))
		x.repl.Set(placeholderLayer, layerName(tiered.LayerL1))
	}
	x.writeEntry(h, e, vals[2:3:3], notMod)
}
