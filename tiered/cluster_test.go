package tiered

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
)

// nodeID returns the cluster node id of the server at addr.
func nodeID(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatalf("CLUSTER MYID on %s: %v", addr, err)
	}
	return id
}

// ownerOf returns the node of nodes that serves slot.
func ownerOf(t *testing.T, nodes []*testredis.Server, slot int64) *testredis.Server {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: nodes[0].Addr()})
	defer c.Close()
	slots, err := c.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			for _, n := range nodes {
				if n.Addr() == s.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	t.Fatalf("no owner for slot %d", slot)
	return nil
}

// moveSlot migrates slot, keys included, from src to dst the way
// redis-cli --cluster reshard does.
func moveSlot(t *testing.T, nodes []*testredis.Server, slot int64, src, dst *testredis.Server) {
	t.Helper()
	ctx := context.Background()
	s := redis.NewClient(&redis.Options{Addr: src.Addr()})
	d := redis.NewClient(&redis.Options{Addr: dst.Addr()})
	defer s.Close()
	defer d.Close()
	srcID, dstID := nodeID(t, src.Addr()), nodeID(t, dst.Addr())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	must(s.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	for {
		keys, err := s.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		host, port, _ := strings.Cut(dst.Addr(), ":")
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(s.Do(ctx, args...).Err())
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		must(c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
		c.Close()
	}
}

func TestClusterSlotMove(t *testing.T) {
	ro, nodes := clusterOptions(t)
	a := newTiered(t, ro)
	ctx := context.Background()
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("/moving/%d", i)
		if ok, err := a.Set(ctx, keys[i], []byte("v"), time.Minute, []string{"mv"}, a.Generation()); !ok || err != nil {
			t.Fatalf("Set: %v %v", ok, err)
		}
	}
	slot := int64(redisClusterSlot(a.l2.entryKey(keys[0])))
	src := ownerOf(t, nodes, slot)
	dst := nodes[0]
	if dst == src {
		dst = nodes[1]
	}
	moveSlot(t, nodes, slot, src, dst)

	b := newTiered(t, ro) // fresh L1: every read goes to Redis
	for _, k := range keys {
		if _, layer, ok := b.Get(ctx, k); !ok || layer != LayerL2 {
			t.Fatalf("Get %s after the slot move: %v %v", k, layer, ok)
		}
	}
	if n := b.PurgeTags(ctx, "mv"); n != len(keys) {
		t.Fatalf("PurgeTags after the slot move removed %d, want %d", n, len(keys))
	}
	if s := b.Stats(); s.L2Errors != 0 {
		t.Fatalf("L2 errors after a slot move: %+v", s)
	}
}

func TestClusterFailedMaster(t *testing.T) {
	ro, nodes := clusterOptions(t)
	ro.ReadTimeout, ro.WriteTimeout, ro.DialTimeout = 100*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
	c := newTiered(t, ro)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		_, _ = c.Set(ctx, fmt.Sprintf("/f/%d", i), []byte("v"), time.Minute, nil, c.Generation())
	}
	nodes[1].Stop()
	// Every L1 entry still answers, writes do not fail, and the cache stops
	// relying on L2: the breaker opens, or (when the purge channel's
	// subscription was on the stopped master) the channel is down, and
	// then Redis is neither read nor written, so no failure opens the
	// breaker.
	testutil.Eventually(t, 10*time.Second, "the breaker to open or the purge channel to go down with a master down", func() bool {
		if st := c.Stats(); st.L2Down || st.PurgeChannelDown {
			return true
		}
		for i := 0; i < 50; i++ {
			if _, _, ok := c.Get(ctx, fmt.Sprintf("/f/%d", i)); !ok {
				t.Fatalf("L1 entry /f/%d missed while a master was down", i)
			}
			if _, err := c.Set(ctx, fmt.Sprintf("/g/%d", i), []byte("v"), time.Minute, nil, c.Generation()); err != nil {
				t.Fatalf("Set while a master was down: %v", err)
			}
		}
		return false
	})
	nodes[1].Start() // same dir: it rejoins with its nodes.conf
	testredis.WaitClusterOK(t, nodes[0].Addr())
	testutil.Eventually(t, 20*time.Second, "breaker to close and the purge channel to be up after the master returned", func() bool {
		st := c.Stats()
		return !st.L2Down && !st.PurgeChannelDown
	})
	testutil.Eventually(t, 10*time.Second, "writes to reach L2 again", func() bool {
		_, _ = c.Set(ctx, "/back", []byte("v"), time.Minute, nil, c.Generation())
		other := newTiered(t, ro)
		_, layer, ok := other.Get(ctx, "/back")
		return ok && layer == LayerL2
	})
}

// redisClusterSlot computes a key's hash slot (CRC16 mod 16384, hash tags
// honoured), as Redis Cluster does.
func redisClusterSlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}
