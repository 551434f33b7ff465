package tiered

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
)

// jsonDoc returns a realistic JSON list of profiles of about size bytes.
func jsonDoc(size int) []byte {
	type profile struct {
		ID       int      `json:"id"`
		Name     string   `json:"name"`
		Age      int      `json:"age"`
		Distance int      `json:"distance_km"`
		Bio      string   `json:"bio"`
		Photos   []string `json:"photos"`
	}
	bios := []string{"Coffee, climbing and bad puns.", "Looking for someone to share dumplings with.", "Dog person. Runner. Amateur astronomer.", "Let's go to a museum and argue about art."}
	var list []profile
	for i := 0; ; i++ {
		list = append(list, profile{ID: 1000 + i*7, Name: fmt.Sprintf("user%d", i), Age: 20 + i%30, Distance: i % 50, Bio: bios[i%len(bios)],
			Photos: []string{fmt.Sprintf("/api/users/%d/photos/1", 1000+i*7)}})
		b, _ := json.Marshal(list)
		if len(b) >= size {
			return b[:size:size]
		}
	}
}

// BenchmarkCodec measures each L2 codec on 1 KB and 8 KB JSON and reports
// the bytes it saves, next to gzip level 6 (the plan's suggestion).
func BenchmarkCodec(b *testing.B) {
	for _, size := range []int{1 << 10, 8 << 10} {
		doc := jsonDoc(size)
		for _, name := range []Codec{CodecNone, CodecS2, CodecZstd} {
			cd, err := newCodec(name)
			if err != nil {
				b.Fatal(err)
			}
			enc := cd.encode(doc)
			b.Run(fmt.Sprintf("%s/%dKB/encode", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					cd.encode(doc)
				}
				b.ReportMetric(float64(size-len(enc)), "bytes-saved")
			})
			b.Run(fmt.Sprintf("%s/%dKB/decode", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := cd.decode(enc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("gzip6/%dKB/encode", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var buf bytes.Buffer
			w, _ := gzip.NewWriterLevel(&buf, 6)
			for b.Loop() {
				buf.Reset()
				w.Reset(&buf)
				_, _ = w.Write(doc)
				_ = w.Close()
			}
			b.ReportMetric(float64(size-buf.Len()), "bytes-saved")
		})
	}
}

// BenchmarkPurgePropagation measures how long a purge on one node takes to
// be applied on another through Redis, and reports P50 and P99.
func BenchmarkPurgePropagation(b *testing.B) {
	ro := testOptions(b, testredis.Shared(b))
	a, c := newTiered(b, ro), newTiered(b, ro)
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("/p/%d", i)
		_, _ = a.Set(ctx, key, []byte("v"), time.Minute, []string{"t"}, a.Generation())
		if _, _, ok := c.Get(ctx, key); !ok {
			b.Fatal("c misses the key a stored")
		}
		before := c.Stats().PurgesReceived
		start := time.Now()
		a.PurgeTags(ctx, "t")
		for c.Stats().PurgesReceived == before {
			if time.Since(start) > 2*time.Second {
				b.Fatal("purge never arrived")
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkGet compares an L1 hit with an L2 hit (L1 miss) in process.
func BenchmarkGet(b *testing.B) {
	ro := testOptions(b, testredis.Shared(b))
	writer := newTiered(b, ro)
	ctx := context.Background()
	doc := jsonDoc(1 << 10)
	_, _ = writer.Set(ctx, "/doc", doc, time.Hour, nil, writer.Generation())
	b.Run("l1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, l, _ := writer.Get(ctx, "/doc"); l != LayerL1 {
				b.Fatal(l)
			}
		}
	})
	b.Run("l2", func(b *testing.B) {
		reader := newTiered(b, ro)
		b.ReportAllocs()
		for b.Loop() {
			if _, l, _ := reader.Get(ctx, "/doc"); l != LayerL2 {
				b.Fatal(l)
			}
			_ = reader.l1.Delete("/doc") // keep it an L1 miss
		}
	})
}
