package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// plan is how long and how hard the drills run: short in `go test` (make
// test), long with SPARK_CHAOS_LONG=1 (make chaos).
type plan struct {
	rate          float64       // requests per second of the steady load
	before, after time.Duration // load before the fault and after recovery
	originDown    time.Duration // origin killed for
	redisDown     time.Duration // Redis killed for
	pgDown        time.Duration // PostgreSQL down for
	slowConns     int           // slow clients
	slowFor       time.Duration // how long the slow clients are measured
}

func planFromEnv() plan {
	if os.Getenv("SPARK_CHAOS_LONG") != "" {
		return plan{rate: 200, before: 5 * time.Second, after: 5 * time.Second, originDown: 60 * time.Second,
			redisDown: 30 * time.Second, pgDown: 10 * time.Second, slowConns: 1000, slowFor: 20 * time.Second}
	}
	return plan{rate: 60, before: 2 * time.Second, after: 2 * time.Second, originDown: 4 * time.Second,
		redisDown: 4 * time.Second, pgDown: 3 * time.Second, slowConns: 1000, slowFor: 5 * time.Second}
}

// TestChaos runs the drills one after the other on one stack and prints the
// table. Each drill fails when its promise breaks.
func TestChaos(t *testing.T) {
	p := planFromEnv()
	photoDir := photoTmpfs(t)
	s := startStack(t, photoDir)
	tr := newTraffic(t, s)
	tb := &table{}
	defer tb.print(t)
	drills := []struct {
		name string
		run  func(t *testing.T, p plan, s *stack, tr *traffic) *row
	}{
		{"origin-killed", drillOriginKilled},
		{"redis-killed", drillRedisKilled},
		{"postgres-restarted", drillPostgresRestarted},
		{"disk-full", drillDiskFull},
		{"slow-clients", drillSlowClients},
		{"edge-killed", drillEdgeKilled},
	}
	for _, d := range drills {
		t.Run(d.name, func(t *testing.T) {
			tr.resetLog()
			// What the edges hold: a drill may have emptied them (Redis
			// coming back empty makes each edge drop its L1).
			tr.warmUp(60)
			r := d.run(t, p, s, tr)
			if t.Failed() {
				r.verdict = "FAIL"
			} else {
				r.verdict = "pass"
			}
			tb.add(r)
		})
	}
}

// phases runs the steady load while fault runs, with p.before of load
// before it and p.after after it returns, and returns the outcomes.
func phases(p plan, load func(ctx context.Context, i int) outcome, fault func()) []outcome {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []outcome, 1)
	go func() { done <- drive(ctx, p.rate, load) }()
	time.Sleep(p.before)
	fault()
	time.Sleep(p.after)
	cancel()
	return <-done
}

// during is the outcomes whose request started in [from, to).
func during(os []outcome, from, to time.Time) []outcome {
	var out []outcome
	for _, o := range os {
		if !o.start.Before(from) && o.start.Before(to) {
			out = append(out, o)
		}
	}
	return out
}

// failures lists up to 10 failed outcomes among os that match keep.
func failures(os []outcome, keep func(outcome) bool) []string {
	var out []string
	for _, o := range os {
		if keep(o) && len(out) < 10 {
			out = append(out, fmt.Sprintf("%s %s via edge %d at %s: %s (status %d, %q) %s", o.op, o.key, o.edge,
				o.start.Format("15:04:05.000"), o.kind, o.status, o.cache, truncate(o.body, 160)))
		}
	}
	return out
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// until polls cond every 50 ms and returns how long after from it first
// held; when limit passes first it fails the test and returns the time
// waited. The limit is a liveness bound, not a measurement.
func until(t *testing.T, from time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for deadline := from.Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return time.Since(from)
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not within %s", what, limit)
			return time.Since(from)
		}
	}
}
