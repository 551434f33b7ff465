package image

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

// BenchmarkEdgeHit compares serving a cached photo variant (spark_image_hints
// → spark_cache hit, raw hints varying within one bucket) with a plain
// spark_cache hit of the same bytes, in one Caddy, in the same run. The
// ratio (variant hit throughput / plain hit throughput, both interleaved)
// is the cost of the variant machinery on hits.
func BenchmarkEdgeHit(b *testing.B) {
	photo := readPhoto(b, "wine-gps-2560x3837.jpg")
	var body atomic.Pointer[[]byte]
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/photos/") {
			w.Write(photo)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(*body.Load())
	}))
	defer origin.Close()
	ports := caddytest.LoadOnFreePorts(b, 2, func(ports []int) string {
		return testSite(ports, "", `	spark_image_hints /photos/*
	spark_cache {
		capacity 64MiB
		max_entry_size 1MiB
	}
	spark_image /photos/* {
		upstream `+origin.URL+`/api/photos
		strip_prefix /photos
	}
	reverse_proxy `+strings.TrimPrefix(origin.URL, "http://")+`
`)
	})
	site := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(path, rtt string) ([]byte, string, error) {
		req, _ := http.NewRequest("GET", site+path, nil)
		req.Header.Set("RTT", rtt)
		req.Header.Set("Accept", "image/webp,*/*")
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		bb, err := io.ReadAll(resp.Body)
		return bb, resp.Header.Get("Cache-Status"), err
	}
	variant, _, err := get("/photos/wine-gps-2560x3837.jpg", "300")
	if err != nil {
		b.Fatal(err)
	}
	body.Store(&variant)
	if _, _, err := get("/plain/wine.jpg", "300"); err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/photos/wine-gps-2560x3837.jpg", "/plain/wine.jpg"} {
		if got, cs, err := get(path, "350"); err != nil || !strings.Contains(cs, "hit") || len(got) != len(variant) {
			b.Fatalf("%s is not a hit of %d bytes: %q, %d bytes, %v", path, len(variant), cs, len(got), err)
		}
	}
	b.Logf("variant: %d bytes", len(variant))
	// Both kinds interleaved on each client goroutine, so that both see
	// the same load.
	var variantNs, plainNs, misses atomic.Int64
	b.SetBytes(int64(2 * len(variant)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			for k, path := range []string{"/photos/wine-gps-2560x3837.jpg", "/plain/wine.jpg"} {
				// Raw RTT values all in the 3G bucket (270–1400 ms).
				t := time.Now()
				_, cs, err := get(path, strconv.Itoa(300+i%1000))
				d := int64(time.Since(t))
				if err != nil {
					b.Error(err)
					return
				}
				if !strings.Contains(cs, "hit") {
					misses.Add(1)
				}
				if k == 0 {
					variantNs.Add(d)
				} else {
					plainNs.Add(d)
				}
			}
			i++
		}
	})
	if m := misses.Load(); m > 0 {
		b.Fatalf("%d requests were not hits", m)
	}
	n := float64(b.N)
	b.ReportMetric(float64(variantNs.Load())/n/1e3, "variant-µs/req")
	b.ReportMetric(float64(plainNs.Load())/n/1e3, "plain-µs/req")
	b.ReportMetric(float64(plainNs.Load())/float64(variantNs.Load()), "ratio")
}
