package push_test

import (
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/store"
)

// TestPresenceFromRedis reads presence as the origin does on Redis: the
// publisher's Online over the presence hashes an edge's subscriber keeps.
func TestPresenceFromRedis(t *testing.T) {
	o := eventbus.DefaultRedisOptions(testredis.Shared(t))
	o.KeyPrefix = testredis.Prefix(t)
	pub, err := eventbus.NewRedisPublisher(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	edge, err := eventbus.NewRedisSubscriber(o, func(eventbus.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = edge.Close() })

	r := newRig(t, push.Options{Window: time.Hour})
	n, err := push.New(push.Options{Directory: r.st, Presence: pub, Providers: r.providers(t), Window: time.Hour, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	r.n = n
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)

	if err := edge.Subscribe(t.Context(), r.bo); err != nil { // Bo connects to an edge
		t.Fatal(err)
	}
	r.n.Enqueue(r.message("while connected"))
	r.drain()
	if err := edge.Unsubscribe(t.Context(), r.bo); err != nil { // and leaves
		t.Fatal(err)
	}
	r.n.Enqueue(r.message("while away"))
	r.drain()
	got := r.apns.Received()
	if len(got) != 2 || got[0].PushType != "background" || got[1].PushType != "alert" || got[1].Body != "while away" {
		t.Fatalf("notifications %+v, want a quiet one while connected, then an alert", got)
	}
}
