package eventbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/eventbus/bustest"
	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
)

// The machine's Redis, each subtest under its own prefix; edges reach it
// through a proxy, and Cut is a network partition.
func TestRedisSharedNode(t *testing.T) {
	addr := testredis.Shared(t)
	bustest.Run(t, func(t *testing.T) bustest.Harness {
		p := testredis.NewProxy(t, addr)
		return &redisHarness{o: fastRedisOptions(t, addr), edgeAddrs: []string{p.Addr()},
			cut: func(*testing.T) func() { p.Cut(); return p.Restore }}
	})
}

// A Redis server of the test's own: Cut kills it (and restarts it empty).
func TestRedisKilledServer(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Harness {
		srv := testredis.Start(t)
		return &redisHarness{o: fastRedisOptions(t, srv.Addr()),
			cut: func(*testing.T) func() { srv.Stop(); return srv.Start }}
	})
}

// A master found through a Sentinel: Cut kills the master.
func TestRedisSentinel(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Harness {
		master := testredis.Start(t)
		sentinel := testredis.StartSentinel(t, "spark", master.Addr())
		o := fastRedisOptions(t, sentinel.Addr())
		o.MasterName = "spark"
		return &redisHarness{o: o, cut: func(*testing.T) func() { master.Stop(); return master.Start }}
	})
}

// A 3-master Cluster with sharded pub/sub: Cut stops every master.
func TestRedisCluster(t *testing.T) {
	nodes := testredis.StartCluster(t)
	addrs := testredis.Addrs(nodes)
	bustest.Run(t, func(t *testing.T) bustest.Harness {
		return &redisHarness{o: fastRedisOptions(t, addrs...), cut: func(t *testing.T) func() {
			for _, n := range nodes {
				n.Stop()
			}
			return func() {
				for _, n := range nodes {
					n.Start()
				}
				for _, a := range addrs {
					testredis.WaitClusterOK(t, a)
				}
			}
		}}
	})
}

// pubsubClients counts a node's connections in subscribed mode.
func pubsubClients(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, "flags=P") {
			n++
		}
	}
	return n
}

// A subscriber holds one connection per node however many users it
// subscribes; in a Cluster it uses sharded pub/sub on every master.
func TestRedisOneConnectionPerNode(t *testing.T) {
	users := make([]int64, 3000)
	for i := range users {
		users[i] = int64(i + 1)
	}
	t.Run("single", func(t *testing.T) {
		srv := testredis.Start(t)
		s, err := eventbus.NewRedisSubscriber(fastRedisOptions(t, srv.Addr()), func(eventbus.Message) {})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Subscribe(context.Background(), users...); err != nil {
			t.Fatal(err)
		}
		if n := pubsubClients(t, srv.Addr()); n != 1 {
			t.Fatalf("%d subscriber connections, want 1", n)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		nodes := testredis.StartCluster(t)
		o := fastRedisOptions(t, testredis.Addrs(nodes)...)
		s, err := eventbus.NewRedisSubscriber(o, func(eventbus.Message) {})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Subscribe(context.Background(), users...); err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		for _, n := range nodes {
			if c := pubsubClients(t, n.Addr()); c != 1 {
				t.Fatalf("node %s: %d subscriber connections, want 1", n.Addr(), c)
			}
			c := redis.NewClient(&redis.Options{Addr: n.Addr()})
			shard, err := c.Do(context.Background(), "PUBSUB", "SHARDCHANNELS", o.KeyPrefix+"u:*").StringSlice()
			plain, _ := c.PubSubChannels(context.Background(), o.KeyPrefix+"u:*").Result()
			c.Close()
			if err != nil || len(plain) != 0 {
				t.Fatalf("node %s: shard channels %d (%v), plain channels %d", n.Addr(), len(shard), err, len(plain))
			}
			total += int64(len(shard))
		}
		if total != int64(len(users)) {
			t.Fatalf("%d shard channels over the masters, want %d", total, len(users))
		}
	})
}

// When a Cluster moves a subscribed channel's slot to another master, the
// old master drops the subscription; the subscriber notices, subscribes
// on the new master and signals Reconnected, and delivery goes on.
func TestRedisClusterSlotMoves(t *testing.T) {
	nodes := testredis.StartCluster(t)
	addrs := testredis.Addrs(nodes)
	o := fastRedisOptions(t, addrs...)
	got := make(chan eventbus.Message, 16)
	s, err := eventbus.NewRedisSubscriber(o, func(m eventbus.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := eventbus.NewRedisPublisher(o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if err := s.Subscribe(ctx, 7); err != nil {
		t.Fatal(err)
	}
	receive := func(seq int64) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("message %d", seq), func() bool {
			if err := p.Publish(ctx, eventbus.Message{UserID: 7, Seq: seq, Payload: []byte(`{}`)}); err != nil {
				return false
			}
			select {
			case m := <-got:
				return m.Seq == seq
			case <-time.After(100 * time.Millisecond):
				return false
			}
		})
	}
	receive(1)

	// Move the channel's slot from its master to another one.
	clients := make(map[string]*redis.Client)
	ids := make(map[string]string)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		defer c.Close()
		clients[a] = c
		ids[a] = c.Do(ctx, "CLUSTER", "MYID").Val().(string)
	}
	slot := clients[addrs[0]].ClusterKeySlot(ctx, o.KeyPrefix+"u:7").Val()
	var from, to string
	owner := clusterOwner(t, clients[addrs[0]], slot)
	for _, a := range addrs {
		if ids[a] == owner {
			from = a
		}
	}
	for _, a := range addrs {
		if a != from {
			to = a
			break
		}
	}
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	must(clients[to], "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from])
	must(clients[from], "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])
	for _, a := range []string{to, from} {
		must(clients[a], "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
	}
	select {
	case <-s.Reconnected():
	case <-time.After(30 * time.Second):
		t.Fatal("no Reconnected after the slot moved")
	}
	receive(2)
	testutil.Eventually(t, 30*time.Second, "the subscription on the new master", func() bool {
		n, _ := clients[to].Do(ctx, "PUBSUB", "SHARDNUMSUB", o.KeyPrefix+"u:7").Slice()
		return len(n) == 2 && n[1] == int64(1)
	})
}

// clusterOwner returns the id of the master a node believes owns slot.
func clusterOwner(t *testing.T, c *redis.Client, slot int64) string {
	t.Helper()
	shards, err := c.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].ID
		}
	}
	t.Fatalf("no owner of slot %d", slot)
	return ""
}
