package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// outcome is what one request of a drill got.
type outcome struct {
	op     string // what the drill asked: read, write, purge, upload…
	edge   int
	key    string // what it was about (a profile path, a swipe pair…)
	start  time.Time
	dur    time.Duration
	status int    // 0: no HTTP answer
	kind   string // "": a good answer; else the error kind (refused, reset, timeout, http 502…)
	cache  string // Cache-Status
	ctype  string // Content-Type
	body   string
}

// stale says whether the edge answered from a stored response it could not
// refresh or revalidate.
func (o outcome) stale() bool {
	return strings.Contains(o.cache, "stale") || strings.Contains(o.cache, "ttl=-")
}

// httpClient is the drills' client: keep-alive, a bound per request.
func httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}}
}

// do sends one request and records what came back. ok decides which
// statuses are good answers; any other status is an error of kind
// "http <status>".
func do(ctx context.Context, c *http.Client, base, method, path, tok, body string, ok ...int) outcome {
	o := outcome{op: method, key: path, start: time.Now()}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		o.kind = "bad request: " + err.Error()
		return o
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		o.dur = time.Since(o.start)
		o.kind = errKind(err)
		return o
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	o.dur = time.Since(o.start)
	o.status, o.cache, o.ctype, o.body = res.StatusCode, res.Header.Get("Cache-Status"), res.Header.Get("Content-Type"), string(b)
	switch {
	case err != nil:
		o.kind = "body " + errKind(err)
	case len(ok) == 0 && res.StatusCode < 400, slices.Contains(ok, res.StatusCode):
	default:
		o.kind = fmt.Sprintf("http %d", res.StatusCode)
	}
	return o
}

// errKind names a transport error's kind.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// drive calls step rate times a second, each call in a goroutine of its
// own (an open model: a slow answer does not slow the arrivals; at most
// maxInFlight at once, an arrival beyond that is recorded as "dropped"),
// until ctx ends, then waits for the calls in flight and returns every
// outcome.
func drive(ctx context.Context, rate float64, step func(ctx context.Context, i int) outcome) []outcome {
	const maxInFlight = 512
	var (
		mu   sync.Mutex
		out  []outcome
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxInFlight)
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		reqs = context.WithoutCancel(ctx) // calls in flight finish after ctx ends
	)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return out
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			out = append(out, outcome{op: "dropped", start: time.Now(), kind: "dropped"})
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := step(reqs, i)
			<-sem
			mu.Lock()
			out = append(out, o)
			mu.Unlock()
		}(i)
	}
}

// row is one drill's line in the table.
type row struct {
	fault    string
	requests int
	errors   map[string]int // by kind
	stale    int            // answers served stale
	s503     int            // 503 answers
	acked    string         // acknowledged writes checked afterwards
	recovery string
	verdict  string // pass, or what broke
}

// tally fills a row's counts from outcomes.
func (r *row) tally(os []outcome) {
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	for _, o := range os {
		r.requests++
		if o.kind != "" {
			r.errors[o.op+" "+o.kind]++
		}
		if o.stale() {
			r.stale++
		}
		if o.status == http.StatusServiceUnavailable {
			r.s503++
		}
	}
}

// table collects the drills' rows and prints them when the run ends.
type table struct {
	mu   sync.Mutex
	rows []*row
}

func (tb *table) add(r *row) {
	tb.mu.Lock()
	tb.rows = append(tb.rows, r)
	tb.mu.Unlock()
}

// print writes the table to stdout (make chaos shows it as it is) and to
// the test log.
func (tb *table) print(t testing.TB) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "fault\trequests\terrors by kind\tstale served\t503s\tacknowledged writes checked\trecovery\tverdict")
	for _, r := range tb.rows {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", r.fault, r.requests, kinds(r.errors), r.stale, r.s503, r.acked, r.recovery, r.verdict)
	}
	_ = w.Flush()
	fmt.Fprintf(os.Stdout, "\nchaos drills:\n%s\n", b.String())
	t.Logf("chaos drills:\n%s", b.String())
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// p95 is the 95th percentile of the durations.
func p95(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*95+99)/100-1]
}
