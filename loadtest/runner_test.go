package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

func mustScenario(t *testing.T, doc string) *Scenario {
	t.Helper()
	sc, err := parseScenario("test.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

const oneEndpoint = `
name: one
endpoints:
  item:
    path: /item/{{.Popular}}
flows:
  - name: f
    weight: 1
    steps: [item]
`

func TestRunOpenModeRate(t *testing.T) {
	var users sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := userOf(r, DevJWTSecret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		users.Store(id, true)
		w.Header().Set("Cache-Status", "spark; hit; ttl=10; detail=l1")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	var progress atomic.Int32
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 200, Duration: 2 * time.Second, Users: 50, Progress: func(Progress) { progress.Add(1) }})

	if err != nil {
		t.Fatal(err)
	}
	tot := res.Stats.Total()
	if tot.Requests != 400 {
		t.Errorf("requests = %d, want 400 (200/s for 2s)", tot.Requests)
	}
	if tot.Errors != 0 {
		t.Errorf("errors = %d: %v", tot.Errors, tot.ErrorKinds)
	}
	if r, ok := tot.Cache.HitRatio(); !ok || r != 1 {
		t.Errorf("hit ratio = %g, %v", r, ok)
	}
	n := 0
	users.Range(func(any, any) bool { n++; return true })
	if n < 40 || n > 50 {
		t.Errorf("%d distinct users, want most of 50", n)
	}
	if progress.Load() < 1 {
		t.Error("no progress reported")
	}
	if res.WireIn == 0 || res.WireOut == 0 || tot.BytesIn != 400*int64(len(`{"ok":true}`)) {
		t.Errorf("bytes: wire %d/%d body %d", res.WireIn, res.WireOut, tot.BytesIn)
	}
}

// A server that can do 50 requests/s offered 100/s: queueing grows all run
// long. A load generator with coordinated omission would wait for responses
// and report ~20 ms; the open model keeps sending and reports the queueing.
func TestRunNoCoordinatedOmission(t *testing.T) {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		time.Sleep(20 * time.Millisecond)
		mu.Unlock()
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 100, Duration: 2 * time.Second, Users: 10})
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Stats.Total()
	if tot.Requests != 200 || tot.Errors != 0 {
		t.Fatalf("requests %d errors %d (%v), want all 200 sent and answered", tot.Requests, tot.Errors, tot.ErrorKinds)
	}
	p50 := time.Duration(tot.Latency.ValueAtQuantile(50)) * time.Microsecond
	p99 := time.Duration(tot.Latency.ValueAtQuantile(99)) * time.Microsecond
	// The last arrival (t≈2s) waits for ~200 requests × 20 ms = 4 s of work.
	if p99 < 1500*time.Millisecond || p50 < 500*time.Millisecond {
		t.Errorf("p50 %s p99 %s: queueing not measured", p50, p99)
	}
}

func TestRunClosedMode(t *testing.T) {
	var cur, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		cur.Add(-1)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeClosed,
		Concurrency: 4, Duration: time.Second, Users: 10})
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Stats.Total()
	if tot.Requests < 100 || tot.Requests > 4*200 || tot.Errors != 0 {
		t.Errorf("requests %d errors %d, want 100..800 and none", tot.Requests, tot.Errors)
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("peak concurrency at the server %d, want <= 4", p)
	}
	if rep := NewReport(res, DefaultTargets()); rep.Concurrency != 4 || rep.HitRatio != nil {
		t.Errorf("report concurrency %d hit %v", rep.Concurrency, rep.HitRatio)
	}
}

const captureScenario = `
name: capture
think: 0s
setup: [hello]
endpoints:
  hello:
    method: POST
    path: /hello
    body: '{"me": {{.Me}}, "partner": {{.Partner}}}'
    expect: [201]
  use:
    path: /items/{{.Pick "ids"}}
  list:
    path: /items
    capture:
      ids: items[].id
  boom:
    path: /boom
flows:
  - name: f
    weight: 1
    steps: [use, list, use, boom]
`

func TestRunCaptureSkipSetupAndErrors(t *testing.T) {
	var setups atomic.Int64
	var badItem atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := userOf(r, "other-secret")
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/hello" && r.Method == http.MethodPost:
			setups.Add(1)
			w.WriteHeader(http.StatusCreated)
		case r.URL.Path == "/items":
			fmt.Fprintf(w, `{"items":[{"id":%d},{"id":%d}]}`, id*100, id*100+1)
		case strings.HasPrefix(r.URL.Path, "/items/"):
			n, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/items/"), 10, 64)
			if n/100 != id {
				badItem.Add(1)
			}
		case r.URL.Path == "/boom":
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, captureScenario), Mode: ModeOpen,
		Rate: 100, Duration: time.Second, Users: 5, JWTSecret: "other-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if setups.Load() != 5 || res.Setup.Total().Requests != 5 || res.Setup.Total().Errors != 0 {
		t.Errorf("setup: %d calls, stats %+v", setups.Load(), res.Setup.Total())
	}
	if badItem.Load() != 0 {
		t.Errorf("%d requests used another user's captured id", badItem.Load())
	}
	use, boom := res.Stats.Endpoints["use"], res.Stats.Endpoints["boom"]
	if use == nil || boom == nil {
		t.Fatalf("endpoints: %v", res.Stats.EndpointNames())
	}
	if use.Skipped == 0 || use.Requests == 0 || use.Errors != 0 {
		t.Errorf("use: skipped %d requests %d errors %d; want the first pick per user skipped, later ones sent", use.Skipped, use.Requests, use.Errors)
	}
	if boom.Requests == 0 || boom.Errors != boom.Requests || boom.ErrorKinds[ErrKind5xx] != boom.Requests || boom.Statuses[500] != boom.Requests {
		t.Errorf("boom: %+v", boom)
	}
}

func TestRunConnectionErrors(t *testing.T) {
	addr := testutil.FreeAddr(t) // nothing listens there
	res, err := Run(context.Background(), Config{Target: "http://" + addr, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 50, Duration: 500 * time.Millisecond, Users: 3})
	if err != nil {
		t.Fatal(err)
	}
	tot := res.Stats.Total()
	if tot.Requests == 0 || tot.ErrorKinds[ErrKindConnection] != tot.Requests {
		t.Errorf("requests %d, error kinds %v; want all connection errors", tot.Requests, tot.ErrorKinds)
	}
	rep := NewReport(res, DefaultTargets())
	if rep.Pass || rep.ErrorRate != 1 {
		t.Errorf("report pass %v error rate %g", rep.Pass, rep.ErrorRate)
	}
}

func TestRunTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 20, Duration: 500 * time.Millisecond, Users: 3, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if tot := res.Stats.Total(); tot.Requests == 0 || tot.ErrorKinds[ErrKindTimeout] != tot.Requests {
		t.Errorf("requests %d kinds %v; want all timeouts", tot.Requests, tot.ErrorKinds)
	}
	// Cancelling the context ends a long run early, without counting the
	// cancelled requests as errors.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	res, err = Run(ctx, Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 20, Duration: time.Minute, Users: 3})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("cancelled run took %s", took)
	}
	if tot := res.Stats.Total(); tot.Errors != 0 {
		t.Errorf("cancelled requests counted as errors: %v", tot.ErrorKinds)
	}
}

// The photos scenario's hint headers vary per request, and an empty
// template result leaves the header out.
func TestRunHintHeaders(t *testing.T) {
	// The run ends once the server has seen enough requests to show the
	// headers' variety, not after a fixed time: in 500 ms a loaded CI
	// machine (-race) sent as few as 55. The duration is only a bound.
	const enough = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]map[string]int{}
	served := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if served++; served == enough {
			cancel()
		}
		for _, h := range []string{"Save-Data", "Ect", "Downlink", "Accept", "Viewport-Width"} {
			if seen[h] == nil {
				seen[h] = map[string]int{}
			}
			v, ok := r.Header[h]
			if !ok {
				seen[h]["<absent>"]++
				continue
			}
			seen[h][v[0]]++
		}
		if !strings.HasPrefix(r.URL.Path, "/item/") {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	// The photo endpoint of the built-in photos scenario, on a fixed path.
	photos, err := LoadScenario("photos")
	if err != nil {
		t.Fatal(err)
	}
	sc := mustScenario(t, oneEndpoint)
	ep := *photos.Endpoints["photo"]
	ep.Path = sc.Endpoints["item"].Path
	sc.Flows[0].Steps[0].Endpoint = &ep
	res, err := Run(ctx, Config{Target: srv.URL, Scenario: sc, Mode: ModeClosed, Concurrency: 4,
		Duration: time.Minute, Users: 100})
	if err != nil {
		t.Fatal(err)
	}
	if tot := res.Stats.Total(); tot.Requests < 100 || tot.Errors != 0 {
		t.Fatalf("requests %d errors %v", tot.Requests, tot.ErrorKinds)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["Save-Data"]["on"] == 0 || seen["Save-Data"]["<absent>"] == 0 || len(seen["Save-Data"]) != 2 {
		t.Errorf("Save-Data values %v, want some on and some absent", seen["Save-Data"])
	}
	if len(seen["Ect"]) < 4 || seen["Ect"][""] != 0 {
		t.Errorf("ECT values %v", seen["Ect"])
	}
	if len(seen["Viewport-Width"]) != 4 || seen["Accept"]["<absent>"] != 0 {
		t.Errorf("Viewport-Width %v Accept %v", seen["Viewport-Width"], seen["Accept"])
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Elapsed: 12 * time.Second, Duration: 30 * time.Second, RPS: 1999.6, P95: 4200 * time.Microsecond,
		Live: Live{Requests: 23012, Errors: 23, Hits: 931, Lookups: 1000, InFlight: 12}}
	got := p.String()
	for _, want := range []string{"[  12s/30s]", "2000 req/s", "23012 reqs", "23 err (0.10%)", "hit 93.1%", "p95 4.2ms", "in-flight 12"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress %q lacks %q", got, want)
		}
	}
	if got := (Progress{}).String(); !strings.Contains(got, "hit -") || !strings.Contains(got, "p95 -") {
		t.Errorf("empty progress %q", got)
	}
}

// Anonymous endpoints (the peers scenario) send no token.
func TestRunAnonymousEndpoints(t *testing.T) {
	var withAuth atomic.Int64
	anon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		if !strings.HasPrefix(r.URL.Path, "/static/profiles/") && !strings.HasPrefix(r.URL.Path, "/static/blobs/") {
			http.NotFound(w, r)
		}
	}))
	defer anon.Close()
	peers, err := LoadScenario("peers")
	if err != nil {
		t.Fatal(err)
	}
	pres, err := Run(context.Background(), Config{Target: anon.URL, Scenario: peers, Mode: ModeClosed, Concurrency: 2,
		Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if tot := pres.Stats.Total(); tot.Requests == 0 || tot.Errors != 0 || withAuth.Load() != 0 {
		t.Errorf("peers: %d requests, %d errors, %d with Authorization", tot.Requests, tot.Errors, withAuth.Load())
	}
	if pres.Stats.Endpoints["blob"] == nil || pres.Stats.Endpoints["profile"] == nil {
		t.Errorf("peers endpoints: %v", pres.Stats.EndpointNames())
	}
}

func TestRunPoissonArrivals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: mustScenario(t, oneEndpoint), Mode: ModeOpen,
		Rate: 200, Duration: 2 * time.Second, Ramp: 500 * time.Millisecond, Poisson: true, Users: 20})
	if err != nil {
		t.Fatal(err)
	}
	// 200/s for 2 s less half the 0.5 s ramp: 350 expected, sd ~19.
	if n := res.Stats.Total().Requests; n < 250 || n > 450 {
		t.Errorf("%d requests, want about 350", n)
	}
}

// body_file bodies go out as they are, with the endpoint's Content-Type; a
// captured path that is not one is an error, not a request elsewhere.
func TestRunBodyFileAndCapturedPaths(t *testing.T) {
	var good, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/upload" && string(b) == "hello-bytes" && r.Header.Get("Content-Type") == "application/x-test" {
			good.Add(1)
			return
		}
		bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	sc, err := LoadScenario(filepath.Join("testdata", "upload.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{Target: srv.URL, Scenario: sc, Mode: ModeClosed, Concurrency: 2,
		Duration: 200 * time.Millisecond, Users: 3})
	if err != nil {
		t.Fatal(err)
	}
	if tot := res.Stats.Total(); tot.Requests == 0 || tot.Errors != 0 || bad.Load() != 0 || good.Load() != tot.Requests ||
		tot.BytesOut != tot.Requests*int64(len("hello-bytes")) {
		t.Errorf("requests %d errors %d good %d bad %d bytes out %d", tot.Requests, tot.Errors, good.Load(), bad.Load(), tot.BytesOut)
	}
	// A template path that renders to a full URL must not be requested.
	abs := mustScenario(t, `
name: abs
endpoints:
  list: {path: /list, capture: {urls: "urls[]"}}
  follow: {path: '{{.Pick "urls"}}'}
flows: [{name: f, weight: 1, steps: [list, follow]}]
`)
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"urls":["http://example.com/x"]}`)
	}))
	defer srv2.Close()
	res, err = Run(context.Background(), Config{Target: srv2.URL, Scenario: abs, Mode: ModeClosed, Concurrency: 1,
		Duration: 100 * time.Millisecond, Users: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Stats.Endpoints["follow"]; f == nil || f.Requests == 0 || f.ErrorKinds[ErrKindOther] != f.Requests {
		t.Errorf("follow: %+v", f)
	}
}
