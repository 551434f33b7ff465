package origin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/push/pushfake"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

// BenchmarkPushNotifications measures what push notifications add to the
// request that causes them: b.N message sends through the origin's HTTP
// handler (in process, embedded store, 1,000 matched pairs, every user
// with an iPhone) paced at SPARK_BENCH_PUSH_RATE sends/s (default 10,000,
// each one notification event), first without a notifier, then with one
// sending to a fake APNs that is down for SPARK_BENCH_PUSH_OUTAGE (default
// 1 s) from the first second on. It reports the P95 of the send requests
// in both runs and their difference (added_p95_us), and lost: events
// neither delivered (summed over the collapsed notifications' counts) nor
// accounted for. The figure run:
//
//	SPARK_BENCH_PUSH_OUTAGE=30s go test -run '^$' -bench PushNotifications -benchtime 450000x ./origin/
func BenchmarkPushNotifications(b *testing.B) {
	rate := 10_000
	if v, err := strconv.Atoi(os.Getenv("SPARK_BENCH_PUSH_RATE")); err == nil && v > 0 {
		rate = v
	}
	outage := time.Second
	if v, err := time.ParseDuration(os.Getenv("SPARK_BENCH_PUSH_OUTAGE")); err == nil {
		outage = v
	}
	off := runPushLoad(b, rate, 0, false)
	on := runPushLoad(b, rate, outage, true)
	b.ReportMetric(float64(off.p95.Microseconds()), "p95_off_us")
	b.ReportMetric(float64(on.p95.Microseconds()), "p95_on_us")
	b.ReportMetric(float64((on.p95 - off.p95).Microseconds()), "added_p95_us")
	b.ReportMetric(float64(off.sends)/off.took.Seconds(), "sends_off/s")
	b.ReportMetric(float64(on.sends)/on.took.Seconds(), "sends_on/s")
	b.ReportMetric(float64(on.notifications), "notifications")
	b.ReportMetric(float64(on.lost), "lost")
	b.ReportMetric(on.drain.Seconds(), "drain_s")
	if on.lost != 0 {
		b.Errorf("%d events lost (stats %+v)", on.lost, on.stats)
	}
}

type pushLoad struct {
	p95           time.Duration
	sends         int
	took          time.Duration
	notifications int
	lost          int64
	drain         time.Duration
	stats         push.Stats
}

// runPushLoad sends b.N messages at rate through a fresh origin, with a
// notifier when withPush, its fake APNs down for outage after one second.
func runPushLoad(b *testing.B, rate int, outage time.Duration, withPush bool) pushLoad {
	b.Helper()
	ctx := context.Background()
	st := memory.New()
	const pairs = 1000
	type pair struct {
		conv   int64
		tokens [2]string
	}
	ps := make([]pair, pairs)
	var fake *pushfake.APNs
	var n *push.Notifier
	// Each send its own write: the batcher's wait for company would be
	// most of a send's time in memory.
	opts := origin.ServerOptions{Store: st, MessageBatch: &origin.MessageBatchOptions{Size: 1}}
	if withPush {
		var err error
		if fake, err = pushfake.NewAPNs("app.spark"); err != nil {
			b.Fatal(err)
		}
		defer fake.Close()
		apns, err := push.NewAPNs(push.APNsOptions{URL: fake.URL(), KeyID: fake.KeyID, TeamID: fake.TeamID, Key: fake.Key(), Client: fake.Client()})
		if err != nil {
			b.Fatal(err)
		}
		n, err = push.New(push.Options{Directory: st, Providers: map[store.Platform]push.Provider{store.IOS: apns},
			MaxBackoff: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		opts.Push = n
	}
	for i := range ps {
		var ids [2]int64
		for j := range ids {
			id, err := st.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: fmt.Sprint("u", i, "-", j), Age: 30, Gender: "woman", Active: true}})
			if err != nil {
				b.Fatal(err)
			}
			ids[j] = id
			ps[i].tokens[j] = token(b, id)
			if _, err := st.PutDevice(ctx, id, store.Device{Platform: store.IOS, Token: fmt.Sprintf("%064x", id), AppID: "app.spark", Locale: "en"}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := st.Swipe(ctx, ids[0], ids[1], store.Like); err != nil {
			b.Fatal(err)
		}
		res, err := st.Swipe(ctx, ids[1], ids[0], store.Like)
		if err != nil || res.Match == nil {
			b.Fatal("no match", err)
		}
		ps[i].conv = res.Match.ConversationID
	}
	auth, err := origin.NewAuthenticator(testSecret, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts.Auth, opts.StoreName = auth, "memory"
	srv, err := origin.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}

	const senders = 8
	hist := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var outageDone chan struct{}
	if withPush && outage > 0 {
		outageDone = make(chan struct{})
		go func() {
			defer close(outageDone)
			time.Sleep(time.Second)
			fake.SetDown(true)
			time.Sleep(outage)
			fake.SetDown(false)
		}()
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			for i := s; i < b.N; i += senders {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				p := ps[i%pairs]
				body := `{"body":"hello ` + strconv.Itoa(i) + `","client_msg_id":"c` + strconv.Itoa(i) + `"}`
				req := httptest.NewRequest(http.MethodPost, "/api/conversations/"+strconv.FormatInt(p.conv, 10)+"/messages", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+p.tokens[i/pairs%2])
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				t0 := time.Now()
				srv.ServeHTTP(rec, req)
				d := time.Since(t0)
				if rec.Code != http.StatusCreated {
					b.Errorf("send %d: %d %s", i, rec.Code, rec.Body.String())
					return
				}
				_ = local.RecordValue(max(d.Microseconds(), 1))
			}
			mu.Lock()
			hist.Merge(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	out := pushLoad{p95: time.Duration(hist.ValueAtQuantile(95)) * time.Microsecond, sends: b.N, took: took}
	if !withPush {
		return out
	}
	if outageDone != nil {
		<-outageDone
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := n.Drain(dctx); err != nil {
		b.Fatalf("drain: %v", err)
	}
	out.drain = time.Since(t0)
	out.stats = n.Stats()
	var delivered int64
	got := fake.Received()
	for _, r := range got {
		c, _ := strconv.ParseInt(r.Data["count"], 10, 64)
		delivered += c
	}
	out.notifications = len(got)
	out.lost = int64(b.N) - delivered
	if rej := fake.Rejected(); len(rej) > 0 {
		b.Errorf("fake APNs refused %d requests, first: %s", len(rej), rej[0])
	}
	return out
}
