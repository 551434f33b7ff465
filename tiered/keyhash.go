package tiered

import "hash/maphash"

// KeyHasher hashes cache keys with a random seed of its own (hash/maphash),
// so keys that collide cannot be computed from outside. It is L1's key
// hash (a bigcache.Hasher) and the one for anything else that spreads
// cache keys over buckets. The zero value is not usable: see NewKeyHasher.
type KeyHasher struct{ seed maphash.Seed }

// NewKeyHasher returns a hasher with a new random seed.
func NewKeyHasher() KeyHasher { return KeyHasher{seed: maphash.MakeSeed()} }

// Sum64 hashes key. It implements bigcache.Hasher.
func (h KeyHasher) Sum64(key string) uint64 { return maphash.String(h.seed, key) }

// SumBytes hashes key as Sum64 hashes string(key), without the copy.
func (h KeyHasher) SumBytes(key []byte) uint64 { return maphash.Bytes(h.seed, key) }
