package redisconn

import (
	"context"
	"strings"
	"testing"

	"github.com/spark-edge/spark/internal/testredis"
)

func TestIsClusterAndCheck(t *testing.T) {
	for _, c := range []struct {
		o       Options
		cluster bool
		ok      bool
	}{
		{Options{}, false, false},
		{Options{Addrs: []string{"a:1"}}, false, true},
		{Options{Addrs: []string{"a:1"}, Cluster: true}, true, true},
		{Options{Addrs: []string{"a:1", "b:1"}}, true, true},
		{Options{Addrs: []string{"s:1", "s:2"}, MasterName: "m"}, false, true},
		{Options{Addrs: []string{"s:1"}, MasterName: "m", Cluster: true}, true, false},
	} {
		if got := c.o.IsCluster(); got != c.cluster {
			t.Errorf("%+v: IsCluster %v, want %v", c.o, got, c.cluster)
		}
		if err := c.o.Check(); (err == nil) != c.ok {
			t.Errorf("%+v: Check %v, want ok=%v", c.o, err, c.ok)
		}
	}
}

// Client reaches a real Redis, logged in to the options' database.
func TestClientReachesRedis(t *testing.T) {
	o := Options{Addrs: []string{testredis.Shared(t)}, DB: 3}
	c := o.Client()
	defer c.Close()
	info, err := c.Do(context.Background(), "CLIENT", "INFO").Text()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	if !strings.Contains(info, " db=3 ") {
		t.Fatalf("client not on db 3: %s", info)
	}
}
