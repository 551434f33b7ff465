package imageproxy

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy/internal/vipsref"
)

type benchPhoto struct {
	name string
	src  []byte
	info SourceInfo
}

func loadBenchPhotos(b *testing.B) []benchPhoto {
	b.Helper()
	var ps []benchPhoto
	for _, ph := range photos {
		src := readPhoto(b, ph.name)
		info, err := Inspect(src)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, benchPhoto{ph.name, src, info})
	}
	return ps
}

// BenchmarkTransform measures Transform for each size and format over all
// the shared photos, two transforms in flight (this machine's 2 cores),
// against libvips' own thumbnail path (vips_thumbnail_buffer + save, same
// box, crop, quality and effort) run interleaved in the same benchmark so
// that both see the same load. Metrics:
//
//	spark-ms/img, vips-ms/img   mean time per image with 2 in flight
//	spark-img/s,  vips-img/s    throughput of each path
//	ratio                       spark throughput / vips throughput (goal ≥ 0.9)
//	median-ratio                median over the photos processed of vips time /
//	                            spark time for the same photo back to back: robust
//	                            to the other load on a shared machine
func BenchmarkTransform(b *testing.B) {
	ps := loadBenchPhotos(b)
	// Slots for every worker even for AVIF (which takes 2): the comparison
	// is of the operation, not of the admission policy, which would make
	// spark's AVIF wait while the reference runs unconstrained.
	const workers = 2
	p, err := New(Config{Limits: Limits{MaxConcurrent: 2 * workers, MaxQueue: 64, Timeout: 10 * time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{200, 400, 800} {
		for _, f := range []Format{FormatJPEG, FormatWebP, FormatAVIF} {
			if f == FormatAVIF && !p.SupportsAVIF() {
				continue
			}
			b.Run(fmt.Sprintf("%dpx/%s", size, f), func(b *testing.B) {
				v := Variant{Width: size, Quality: 75, Format: f}
				effort := map[Format]int{FormatJPEG: 0, FormatWebP: p.cfg.WebPEffort, FormatAVIF: p.cfg.AVIFEffort}[f]
				var sparkNs, refNs, next atomic.Int64
				var bytesOut atomic.Int64
				var wg sync.WaitGroup
				var mu sync.Mutex
				var pairs []float64 // reference time / spark time, same photo, same worker, back to back
				b.ResetTimer()
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							ph := ps[i%int64(len(ps))]
							var ds, dr time.Duration
							// Alternate which path goes first, so neither
							// always runs on a warmer cache.
							run := []func(){
								func() {
									t := time.Now()
									r, err := p.Transform(context.Background(), ph.src, v)
									ds = time.Since(t)
									sparkNs.Add(int64(ds))
									if err != nil {
										b.Error(err)
										return
									}
									bytesOut.Add(int64(len(r.Body)))
								},
								func() {
									w, h, crop := Geometry(ph.info, v)
									t := time.Now()
									_, err := vipsref.ThumbnailSave(ph.src, w, h, crop, int(f), v.Quality, effort)
									dr = time.Since(t)
									refNs.Add(int64(dr))
									if err != nil {
										b.Error(err)
									}
								},
							}
							if i%2 == 1 {
								run[0], run[1] = run[1], run[0]
							}
							run[0]()
							run[1]()
							mu.Lock()
							pairs = append(pairs, float64(dr)/float64(ds))
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				n := float64(b.N)
				sp, rf := float64(sparkNs.Load()), float64(refNs.Load())
				b.ReportMetric(sp/n/1e6, "spark-ms/img")
				b.ReportMetric(rf/n/1e6, "vips-ms/img")
				b.ReportMetric(n/(sp/workers/1e9), "spark-img/s")
				b.ReportMetric(n/(rf/workers/1e9), "vips-img/s")
				b.ReportMetric(rf/sp, "ratio")
				slices.Sort(pairs)
				b.ReportMetric(pairs[len(pairs)/2], "median-ratio")
				b.ReportMetric(float64(bytesOut.Load())/n/1024, "KiB/img")
			})
		}
	}
}

// BenchmarkInspect is the header check every request pays before any
// decoding (a bomb costs this much).
func BenchmarkInspect(b *testing.B) {
	src := readBomb(b, "bomb-webp-16383x16383-lossless.webp")
	photo := readPhoto(b, "bird-6028x3391-q80.jpg")
	b.Run("bomb-webp", func(b *testing.B) {
		for b.Loop() {
			if _, err := Inspect(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bird-20MP-jpeg", func(b *testing.B) {
		for b.Loop() {
			if _, err := Inspect(photo); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPeakRSS runs two concurrent 800 px transforms of the largest
// photo (20 MP) in every format and reports the process's peak RSS
// (VmHWM). Run it alone (-bench PeakRSS): the peak covers the process.
func BenchmarkPeakRSS(b *testing.B) {
	src := readPhoto(b, "bird-6028x3391-q80.jpg")
	p, err := New(Config{Limits: Limits{MaxConcurrent: 2, Timeout: 10 * time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	fs := []Format{FormatJPEG, FormatWebP}
	if p.SupportsAVIF() {
		fs = append(fs, FormatAVIF)
	}
	for b.Loop() {
		for _, f := range fs {
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := p.Transform(context.Background(), src, Variant{Width: 800, Quality: 85, Format: f}); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
	}
	b.ReportMetric(float64(procStatusKB(b, "VmHWM"))/1024, "peak-RSS-MB")
}

func procStatusKB(b *testing.B, field string) int {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}
