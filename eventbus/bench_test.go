package eventbus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/internal/testredis"
)

// benchUsers are the users a benchmark's subscriber holds.
const benchUsers = 100

// benchPayload is a chat event of the usual size (~150 bytes).
var benchPayload = []byte(`{"seq":1,"kind":"message","at":"2026-12-07T10:00:00.123456Z","data":{"id":1,"conversation_id":7,"conv_seq":3,"sender_id":2,"body":"see you at 8?"}}`)

// benchBus starts one transport's publisher and a subscriber of
// benchUsers users delivering to h.
type benchBus func(b *testing.B, h eventbus.Handler) eventbus.Publisher

func redisBench(b *testing.B, h eventbus.Handler) eventbus.Publisher {
	o := eventbus.DefaultRedisOptions(testredis.Shared(b))
	o.KeyPrefix, o.Logger = testredis.Prefix(b), testLogger()
	s, err := eventbus.NewRedisSubscriber(o, h)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	p, err := eventbus.NewRedisPublisher(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	benchSubscribe(b, s)
	return p
}

func streamBench(b *testing.B, h eventbus.Handler) eventbus.Publisher {
	sh := newStreamHarness(b)
	c, err := eventbus.NewStreamClient(sh.clientOptions(), h)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	benchSubscribe(b, c)
	return sh.server()
}

func benchSubscribe(b *testing.B, s eventbus.Subscriber) {
	users := make([]int64, benchUsers)
	for i := range users {
		users[i] = int64(i + 1)
	}
	if err := s.Subscribe(context.Background(), users...); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPublishToHandler measures publish → handler on each transport,
// publisher and subscriber in this process (allocations are both sides').
// "one": a message at a time, waiting for it (ns/op is the latency);
// "batch100": 100 messages per Publish (ns/op and allocs/op per message).
func BenchmarkPublishToHandler(b *testing.B) {
	for _, tr := range []struct {
		name  string
		start benchBus
	}{{"redis", redisBench}, {"stream", streamBench}} {
		b.Run(tr.name+"/one", func(b *testing.B) {
			got := make(chan struct{}, 1)
			p := tr.start(b, func(eventbus.Message) { got <- struct{}{} })
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			m := eventbus.Message{UserID: 1, Seq: 1, Payload: benchPayload}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := p.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
				<-got
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
		b.Run(tr.name+"/batch100", func(b *testing.B) {
			got := make(chan struct{}, benchUsers)
			p := tr.start(b, func(eventbus.Message) { got <- struct{}{} })
			ctx := context.Background()
			batch := make([]eventbus.Message, benchUsers)
			for i := range batch {
				batch[i] = eventbus.Message{UserID: int64(i + 1), Seq: 1, Payload: benchPayload}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += len(batch) {
				n := min(len(batch), b.N-sent)
				if err := p.Publish(ctx, batch[:n]...); err != nil {
					b.Fatal(err)
				}
				for range n {
					<-got
				}
			}
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	for _, q := range []float64{0.5, 0.99} {
		b.ReportMetric(float64(lat[int(q*float64(len(lat)-1))].Microseconds()), fmt.Sprintf("p%02.0f-µs", q*100))
	}
}
