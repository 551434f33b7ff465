package eventbus

import "sync"

// registryShards splits the registry so that one lock never serialises
// the origin's publishes.
const registryShards = 64

// registry maps each user to the edges subscribed to them.
type registry struct {
	shards [registryShards]registryShard
}

type registryShard struct {
	mu    sync.RWMutex
	users map[int64][]*streamEdge
}

func (r *registry) shard(user int64) *registryShard {
	return &r.shards[uint64(user)%registryShards]
}

// add subscribes e to user; e must not be subscribed yet.
func (r *registry) add(e *streamEdge, user int64) {
	s := r.shard(user)
	s.mu.Lock()
	if s.users == nil {
		s.users = make(map[int64][]*streamEdge)
	}
	s.users[user] = append(s.users[user], e)
	s.mu.Unlock()
}

// remove unsubscribes e from user.
func (r *registry) remove(e *streamEdge, user int64) {
	s := r.shard(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	edges := s.users[user]
	for i, x := range edges {
		if x == e {
			edges[i] = edges[len(edges)-1]
			edges[len(edges)-1] = nil
			edges = edges[:len(edges)-1]
			break
		}
	}
	if len(edges) == 0 {
		delete(s.users, user)
	} else {
		s.users[user] = edges
	}
}

// each calls fn for every edge subscribed to user, under the shard's read
// lock: a subscription change waits for it, so what fn queues precedes
// the change's ack.
func (r *registry) each(user int64, fn func(*streamEdge)) {
	s := r.shard(user)
	s.mu.RLock()
	for _, e := range s.users[user] {
		fn(e)
	}
	s.mu.RUnlock()
}

// online reports whether some edge is subscribed to user.
func (r *registry) online(user int64) bool {
	s := r.shard(user)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users[user]) > 0
}
