package eventbus

import (
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/redisconn"
)

func TestRedisOptionsFill(t *testing.T) {
	for name, o := range map[string]RedisOptions{
		"no address":             {},
		"sentinel and cluster":   {Options: redisconn.Options{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}},
		"ttl within the refresh": {Options: redisconn.Options{Addrs: []string{"a:1"}}, PresenceRefresh: time.Minute, PresenceTTL: time.Second},
	} {
		if err := o.fill(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := RedisOptions{Options: redisconn.Options{Addrs: []string{"a:1"}}, ReconnectMin: 10 * time.Second}
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	d := DefaultRedisOptions()
	if o.KeyPrefix != "spark:" || o.PresenceTTL != d.PresenceTTL || o.ReconnectMax != o.ReconnectMin || o.Node == "" || o.IsCluster() {
		t.Fatalf("filled %+v", o)
	}
	for addrs, cluster := range map[int]bool{1: false, 2: true} {
		o := RedisOptions{Options: redisconn.Options{Addrs: make([]string, addrs)}}
		if o.IsCluster() != cluster {
			t.Errorf("%d addresses: cluster %v", addrs, !cluster)
		}
	}
	if o := (RedisOptions{Options: redisconn.Options{Addrs: []string{"s1", "s2"}, MasterName: "m"}}); o.IsCluster() {
		t.Error("two sentinels taken for a Cluster")
	}
}
