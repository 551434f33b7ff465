package eventbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/redis/go-redis/v9"
)

// topology says which Redis nodes a subscriber connects to, and which of
// them carries a user's channel.
type topology interface {
	// nodes returns the addresses to connect to, asking the deployment
	// afresh: a Sentinel's current master, a Cluster's current masters.
	nodes(ctx context.Context) ([]string, error)
	// route returns the address of the node that carries channel.
	route(ctx context.Context, channel string) (string, error)
	// sharded reports whether channels are shard channels (SSUBSCRIBE).
	sharded() bool
}

func newTopology(o *RedisOptions, client redis.UniversalClient) topology {
	switch {
	case o.IsCluster():
		return clusterMasters{client.(*redis.ClusterClient)}
	case o.MasterName != "":
		return &sentinelMaster{o: o}
	default:
		return singleNode(o.Addrs[0])
	}
}

// singleNode is one Redis server.
type singleNode string

func (n singleNode) nodes(context.Context) ([]string, error)       { return []string{string(n)}, nil }
func (n singleNode) route(context.Context, string) (string, error) { return string(n), nil }
func (n singleNode) sharded() bool                                 { return false }

// sentinelMaster is the master the sentinels name. Pub/sub messages reach
// a master's replicas too, so a connection that outlives a failover still
// receives; one that breaks finds the new master.
type sentinelMaster struct {
	o    *RedisOptions
	mu   sync.Mutex
	addr string
}

func (m *sentinelMaster) nodes(ctx context.Context) ([]string, error) {
	var errs []error
	for _, s := range m.o.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{
			Addr: s, DialTimeout: m.o.DialTimeout, ReadTimeout: m.o.ReadTimeout, WriteTimeout: m.o.WriteTimeout, MaxRetries: -1,
		})
		hp, err := sc.GetMasterAddrByName(ctx, m.o.MasterName).Result()
		_ = sc.Close()
		if err == nil && len(hp) == 2 {
			m.mu.Lock()
			m.addr = net.JoinHostPort(hp[0], hp[1])
			m.mu.Unlock()
			return []string{m.addr}, nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %v", s, err))
	}
	return nil, fmt.Errorf("eventbus: no sentinel names master %q: %w", m.o.MasterName, errors.Join(errs...))
}

func (m *sentinelMaster) route(context.Context, string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr, nil
}

func (m *sentinelMaster) sharded() bool { return false }

// clusterMasters are a Cluster's masters: a shard channel lives on the
// master of its hash slot, and SSUBSCRIBE must be sent there.
type clusterMasters struct{ c *redis.ClusterClient }

func (cm clusterMasters) nodes(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var addrs []string
	err := cm.c.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
		mu.Lock()
		addrs = append(addrs, m.Options().Addr)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: redis cluster masters: %w", err)
	}
	return addrs, nil
}

func (cm clusterMasters) route(ctx context.Context, channel string) (string, error) {
	m, err := cm.c.MasterForKey(ctx, channel)
	if err != nil {
		return "", fmt.Errorf("eventbus: redis cluster: master for %s: %w", channel, err)
	}
	return m.Options().Addr, nil
}

func (cm clusterMasters) sharded() bool { return true }
