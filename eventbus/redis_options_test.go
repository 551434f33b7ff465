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

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		if d := b.next(); d < step/2 || d > step {
			t.Fatalf("attempt %d waits %s, want within [%s, %s]", i+1, d, step/2, step)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %s", d)
	}
}
