package push_test

import (
	"testing"

	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/store/memory"
)

// BenchmarkEnqueue is what a request pays to hand an event to the
// notifier (users without devices: the rest of the pipeline runs but
// sends nothing), from 2×GOMAXPROCS goroutines at once.
func BenchmarkEnqueue(b *testing.B) {
	n, err := push.New(push.Options{Directory: memory.New(), Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	b.SetParallelism(2)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i int64
		for pb.Next() {
			i++
			n.Enqueue(push.Event{Kind: push.KindMessage, UserID: i%10_000 + 1, FromID: 1, ConversationID: 1, MessageID: i})
		}
	})
	b.StopTimer()
	if s := n.Stats(); s.Dropped > 0 {
		b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
	}
}
