// Package appopen is the app-open flow of `spark loadtest appopen`: the
// five calls a phone makes when the app opens (the deck, the first three
// cards' profiles, the conversations), sent as one POST /api/batch and,
// as the reference, as five separate calls, over a simulated mobile link
// (a delaying proxy on loopback, slowlink.go) to an edge on this machine.
// It reports each form's latency percentiles, bytes on the link and round
// trips, beside the slowest of the five calls sent alone.
package appopen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/loadtest"
)

// Config is one app-open run.
type Config struct {
	// Target is the edge's base URL (loopback).
	Target string
	// Token is the user's bearer token.
	Token string
	// Link is the simulated link between the phone and the edge.
	Link Link
	// Runs is how many app opens each form is measured over.
	Runs int
	// Header is sent with every request besides Authorization (the app's
	// client hints, User-Agent…).
	Header http.Header
	// H2C speaks HTTP/2 without TLS (prior knowledge) instead of HTTP/1.1:
	// the edge must allow h2c (`protocols h1 h2c`).
	H2C bool
	// PartnerToken, when set, signs a token for another user. Before each
	// measured app open, the peer of the user's first conversation then
	// sends the user a message, straight to the edge (not over the link),
	// as when someone wrote while the app was closed: the inbox is a miss
	// at every open, the deck and the profiles stay cached (4 of 5).
	PartnerToken func(user int64) (string, error)
}

// PhoneHeader is what the simulated phone sends on every request besides
// Authorization: a native app's User-Agent, Accept, Accept-Language and
// the client hints the edge's photo variants use (ECT, Downlink, RTT,
// DPR, viewport width). Over HTTP/1.1 each of the five calls carries them;
// a batch carries them once (its sub-requests inherit them).
func PhoneHeader() http.Header {
	h := http.Header{}
	h.Set("User-Agent", "Spark/3.2.1 (iPhone15,2; iOS 17.4.1; Scale/3.00) CFNetwork/1494.0.7 Darwin/23.4.0")
	h.Set("Accept", "application/json")
	h.Set("Accept-Language", "en-GB,en;q=0.9")
	h.Set("ECT", "3g")
	h.Set("Downlink", "1.6")
	h.Set("RTT", "150")
	h.Set("Sec-CH-DPR", "3")
	h.Set("Sec-CH-Viewport-Width", "390")
	return h
}

// Form is one way of making the app-open calls.
type Form struct {
	// Name says what was measured.
	Name string
	// Latency holds every run's time from the first byte sent to the last
	// byte of the last response read, sorted.
	Latency []time.Duration
	// BytesUp and BytesDown are the bytes on the link per run.
	BytesUp, BytesDown int64
	// RoundTrips is the HTTP request/response exchanges per run.
	RoundTrips int
	// Hits is the sub-responses (or responses) the edge's cache answered
	// per run: the last measured run's, or for the batch (whose measured
	// runs keep only the fields an app uses) one more batch's that asks
	// for Cache-Status after the measured runs.
	Hits int
}

// Percentile returns the q-th percentile (0..1) of the latencies (nearest
// rank).
func (f *Form) Percentile(q float64) time.Duration {
	if len(f.Latency) == 0 {
		return 0
	}
	i := int(q*float64(len(f.Latency))+0.999999) - 1
	return f.Latency[min(max(i, 0), len(f.Latency)-1)]
}

// Bytes is the bytes on the link per run, both ways.
func (f *Form) Bytes() int64 { return f.BytesUp + f.BytesDown }

// Result is the three forms of one run.
type Result struct {
	Link    Link
	Calls   []string
	Batch   Form // one POST /api/batch
	Five    Form // the reference: five calls in parallel
	Slowest Form // the reference: the slowest call alone
}

// Calls returns the app-open calls for a deck whose first cards are ids.
func Calls(ids []int64) []string {
	calls := []string{"/api/matches/suggestions?limit=10&fields=id,name,age,distance_km,photos"}
	for _, id := range ids[:min(3, len(ids))] {
		calls = append(calls, fmt.Sprintf("/api/users/%d/profile", id))
	}
	return append(calls, "/api/conversations?fields=id,peer_id,unread_count,last_message")
}

// phone is the simulated phone: one HTTP client through the link, which
// counts its round trips.
type phone struct {
	cfg    Config
	base   string
	client *http.Client
	proxy  *Proxy
	trips  atomic.Int64
}

func newPhone(cfg Config) (*phone, error) {
	u, err := loadtest.CheckTarget(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("app-open: %w", err)
	}
	px, err := NewProxy(cfg.Link, u.Host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}
	if cfg.H2C {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	ph := &phone{cfg: cfg, base: "http://" + px.Addr(), proxy: px}
	ph.client = &http.Client{Timeout: 30 * time.Second, Transport: countTrips{tr, &ph.trips}}
	return ph, nil
}

func (ph *phone) close() {
	ph.client.CloseIdleConnections()
	_ = ph.proxy.Close()
}

type countTrips struct {
	http.RoundTripper
	n *atomic.Int64
}

// RoundTrip counts the exchange.
func (c countTrips) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

// get sends one GET and returns its body and whether the cache answered.
func (ph *phone) get(ctx context.Context, path string) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ph.base+path, nil)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: %w", path, err)
	}
	ph.headers(req)
	res, err := ph.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: read: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("GET %s: %d %.200s", path, res.StatusCode, b)
	}
	return b, contract.IsCacheHit(res.Header.Get("Cache-Status")), nil
}

func (ph *phone) headers(req *http.Request) {
	for k, v := range ph.cfg.Header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+ph.cfg.Token)
}

// batch sends the calls as one batch, its body gzip-compressed as an app
// sends it, keeping the sub-response fields the edge keeps by default and
// those named in keep (response_headers). It returns how many of the
// calls the cache answered, as far as the kept fields tell (Cache-Status
// is not kept by default: ask for it in keep to count hits).
func (ph *phone) batch(ctx context.Context, calls []string, keep ...string) (int, error) {
	type sub struct {
		ID   string `json:"id"`
		Path string `json:"path"`
	}
	var body struct {
		Keep     []string `json:"response_headers,omitempty"`
		Requests []sub    `json:"requests"`
	}
	body.Keep = keep
	for i, c := range calls {
		body.Requests = append(body.Requests, sub{ID: fmt.Sprint(i), Path: c})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encode the batch: %w", err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(b); err != nil {
		return 0, fmt.Errorf("compress the batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("compress the batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ph.base+"/api/batch", &zb)
	if err != nil {
		return 0, fmt.Errorf("batch: %w", err)
	}
	ph.headers(req)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := ph.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("batch: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		Responses []struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
		} `json:"responses"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("batch: %d: %v", res.StatusCode, err)
	}
	hits := 0
	for i, r := range out.Responses {
		if r.Status != http.StatusOK {
			return 0, fmt.Errorf("batch: %s answered %d", calls[i], r.Status)
		}
		if contract.IsCacheHit(r.Headers["Cache-Status"]) {
			hits++
		}
	}
	return hits, nil
}

// five sends the calls in parallel, each on its own request.
func (ph *phone) five(ctx context.Context, calls []string) (int, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(calls))
	hit := make([]bool, len(calls))
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, hit[i], errs[i] = ph.get(ctx, c)
		}()
	}
	wg.Wait()
	hits := 0
	for i := range calls {
		if errs[i] != nil {
			return 0, errs[i]
		}
		if hit[i] {
			hits++
		}
	}
	return hits, nil
}

// form is one form being measured on its own phone.
type form struct {
	f  *Form
	ph *phone
	do func(*phone) (int, error)
	// hits, when set, counts the cache's answers on a run of its own after
	// the measured ones (for a form whose measured runs do not tell).
	hits   func(*phone) (int, error)
	up, dn int64
	trips  int64
}

// start makes one unmeasured run (which opens the connections and fills
// the cache) and notes the counters.
func (m *form) start() error {
	if _, err := m.do(m.ph); err != nil {
		return err
	}
	m.up, m.dn = m.ph.proxy.Bytes()
	m.trips = m.ph.trips.Load()
	return nil
}

// once makes one measured run.
func (m *form) once() error {
	start := time.Now()
	hits, err := m.do(m.ph)
	if err != nil {
		return err
	}
	m.f.Latency = append(m.f.Latency, time.Since(start))
	m.f.Hits = hits
	return nil
}

// finish turns the counters into per-run figures.
func (m *form) finish(runs int) {
	up, dn := m.ph.proxy.Bytes()
	n := int64(runs)
	m.f.BytesUp, m.f.BytesDown = (up-m.up)/n, (dn-m.dn)/n
	m.f.RoundTrips = int((m.ph.trips.Load() - m.trips) / n)
	slices.Sort(m.f.Latency)
}

// Run measures the three forms, each on a phone of its own (its own
// connections through its own link), taking turns run by run.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("app-open: runs must be at least 1, got %d", cfg.Runs)
	}
	ph, err := newPhone(cfg)
	if err != nil {
		return nil, err
	}
	deck, _, err := ph.get(ctx, "/api/matches/suggestions?limit=10&fields=id")
	var nudge func() error
	if err == nil && cfg.PartnerToken != nil {
		nudge, err = partnerWrites(ctx, ph, cfg)
	}
	ph.close()
	if err != nil {
		return nil, fmt.Errorf("app-open: the user's deck: %w", err)
	}
	var d struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
	}
	if err := json.Unmarshal(deck, &d); err != nil || len(d.Suggestions) < 3 {
		return nil, fmt.Errorf("app-open: the user's deck has fewer than 3 cards (%.200s)", deck)
	}
	var ids []int64
	for _, s := range d.Suggestions {
		ids = append(ids, s.ID)
	}
	res := &Result{Link: cfg.Link, Calls: Calls(ids)}
	res.Batch.Name, res.Five.Name = "batch (one POST /api/batch)", "five calls in parallel (reference)"
	slowest := res.Calls[len(res.Calls)-1]
	res.Slowest.Name = "slowest call alone (reference): " + strings.SplitN(slowest, "?", 2)[0]
	forms := []*form{
		{f: &res.Slowest, do: func(ph *phone) (int, error) {
			_, hit, err := ph.get(ctx, slowest)
			if hit {
				return 1, err
			}
			return 0, err
		}},
		{f: &res.Five, do: func(ph *phone) (int, error) { return ph.five(ctx, res.Calls) }},
		{f: &res.Batch, do: func(ph *phone) (int, error) { return ph.batch(ctx, res.Calls) },
			hits: func(ph *phone) (int, error) { return ph.batch(ctx, res.Calls, "Cache-Status") }},
	}
	for _, m := range forms {
		if m.ph, err = newPhone(cfg); err != nil {
			return nil, err
		}
		defer m.ph.close()
		if err := m.start(); err != nil {
			return nil, fmt.Errorf("app-open: %s: %w", m.f.Name, err)
		}
	}
	// The forms take turns, run by run, so that the machine's load at any
	// moment weighs on the three alike.
	for range cfg.Runs {
		for _, m := range forms {
			if nudge != nil {
				if err := nudge(); err != nil {
					return nil, fmt.Errorf("app-open: the partner's message: %w", err)
				}
			}
			if err := m.once(); err != nil {
				return nil, fmt.Errorf("app-open: %s: %w", m.f.Name, err)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	for _, m := range forms {
		m.finish(cfg.Runs)
		if m.hits != nil {
			if nudge != nil {
				// The counting run opens the app as the measured ones did.
				if err := nudge(); err != nil {
					return nil, fmt.Errorf("app-open: the partner's message: %w", err)
				}
			}
			if m.f.Hits, err = m.hits(m.ph); err != nil {
				return nil, fmt.Errorf("app-open: %s: counting hits: %w", m.f.Name, err)
			}
		}
	}
	return res, nil
}

// partnerWrites returns a function by which the peer of the user's first
// conversation sends the user a message through the edge (its Spark-Purge
// drops the user's cached inbox).
func partnerWrites(ctx context.Context, ph *phone, cfg Config) (func() error, error) {
	b, _, err := ph.get(ctx, "/api/conversations?fields=id,peer_id")
	if err != nil {
		return nil, fmt.Errorf("the user's conversations: %w", err)
	}
	var list struct {
		Conversations []struct {
			ID     int64 `json:"id"`
			PeerID int64 `json:"peer_id"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list.Conversations) == 0 {
		return nil, fmt.Errorf("the user has no conversation for a partner to write in (%.200s)", b)
	}
	conv := list.Conversations[0]
	tok, err := cfg.PartnerToken(conv.PeerID)
	if err != nil {
		return nil, fmt.Errorf("token for user %d: %w", conv.PeerID, err)
	}
	url := fmt.Sprintf("%s/api/conversations/%d/messages", strings.TrimRight(cfg.Target, "/"), conv.ID)
	client := &http.Client{Timeout: 10 * time.Second}
	n := 0
	return func() error {
		n++
		body := fmt.Sprintf(`{"body":"are you there? (%d)","client_msg_id":"appopen-%d-%d"}`, n, time.Now().UnixNano(), n)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("POST %s: %w", url, err)
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %d", url, res.StatusCode)
		}
		return nil
	}, nil
}
