package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// drillOriginKilled: the origin is killed under load for p.originDown. The
// profiles the edges hold are served throughout (stale-if-error, or fresh
// hits); writes fail fast with a 503 problem, none half-applied; every
// acknowledged write is in the database afterwards.
func drillOriginKilled(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "origin killed for " + p.originDown.String()}
	var down, back time.Time
	outs := phases(p, tr.mix(0.1, -1), func() {
		down = time.Now()
		s.KillOrigin()
		time.Sleep(p.originDown)
		back = time.Now()
		s.StartOrigin()
	})
	r.tally(outs)
	for _, f := range failures(outs, func(o outcome) bool { return o.op == "read" && o.kind != "" }) {
		t.Errorf("a profile the edges hold failed: %s", f)
	}
	var slowest time.Duration
	for _, o := range during(outs, down.Add(200*time.Millisecond), back) { // requests sent once the origin was surely gone
		if o.op != "write" {
			continue
		}
		if o.status != http.StatusServiceUnavailable || o.ctype != "application/problem+json" {
			t.Errorf("a write while the origin was down: %s %q (%s), want a 503 problem", o.kind, o.body, o.ctype)
		}
		slowest = max(slowest, o.dur)
	}
	if slowest > 2*time.Second {
		t.Errorf("writes while the origin was down took up to %s to fail, want under 2 s", slowest)
	}
	cell, problems := tr.checkWrites(down, 0)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = cell
	r.recovery = firstAckAfter(outs, back)
	t.Logf("origin down %s..%s; slowest refused write %s", down.Format("15:04:05.000"), back.Format("15:04:05.000"), slowest)
	return r
}

// firstAckAfter is how long after at the first write started that was
// acknowledged.
func firstAckAfter(outs []outcome, at time.Time) string {
	best := time.Duration(-1)
	for _, o := range outs {
		if o.op == "write" && o.kind == "" && !o.start.Before(at) {
			if d := o.start.Add(o.dur).Sub(at); best < 0 || d < best {
				best = d
			}
		}
	}
	if best < 0 {
		return "no write acknowledged after"
	}
	return "first ack " + ms(best) + " after restart"
}

// drillRedisKilled: Redis is stopped under load for p.redisDown, then
// started again (empty). No request fails at the edges; profiles edited
// through edge 0 meanwhile (their purges cannot reach edge 1 while Redis is
// down) are served new by edge 1 once Redis is back: the purges are not
// lost. Edge 1 serves its old copies until it has re-subscribed to the
// purge channel; that window is measured and bounded at 10 s (the issue's
// "no stale entry after Redis returns" holds once each edge has noticed).
func drillRedisKilled(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "Redis killed for " + p.redisDown.String()}
	ctx := context.Background()
	owners := make([]int64, 0, 8)
	for _, path := range tr.warm[:8] {
		owners = append(owners, profileOwner(path))
	}
	newBio := map[int64]string{}
	var back time.Time
	var recovery, flushed time.Duration
	oldReads := 0
	outs := phases(p, tr.mix(0.1, -1), func() {
		s.redis.Stop()
		for i, id := range owners {
			bio := fmt.Sprintf("chaos redis drill %d %d", id, time.Now().UnixNano())
			if err := tr.setBio(ctx, 0, id, bio); err != nil {
				t.Errorf("edit profile %d through edge 0 while Redis is down: %v", id, err)
			}
			newBio[id] = bio
			// Edge 0 purged its own copy: it serves the new one at once.
			if got := tr.bioOf(ctx, 0, id); got != bio {
				t.Errorf("edge 0 serves profile %d with bio %q after its own edit (%d), want %q", id, got, i, bio)
			}
		}
		time.Sleep(p.redisDown)
		s.redis.Start()
		back = time.Now()
		// Edge 1 missed the purges; it must serve the new profiles once
		// Redis answers again.
		pending := map[int64]bool{}
		for _, id := range owners {
			pending[id] = true
		}
		for deadline := back.Add(10 * time.Second); len(pending) > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("10 s after Redis returned edge 1 still serves old profiles for %v", keys(pending))
				break
			}
			for id := range pending {
				if tr.bioOf(ctx, 1, id) == newBio[id] {
					delete(pending, id)
				} else {
					oldReads++
				}
			}
		}
		recovery = time.Since(back)
		// The purges edge 0 deferred reach Redis (and so every edge)
		// once its circuit breaker closes again.
		flushed = until(t, back, 60*time.Second, "no deferred purge left at the edges after Redis returned", s.purgesSettled)
	})
	r.tally(outs)
	for _, f := range failures(outs, func(o outcome) bool { return o.kind != "" }) {
		t.Errorf("a request failed at the edges: %s", f)
	}
	cell, problems := tr.checkWrites(time.Time{}, 0)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = cell
	r.recovery = fmt.Sprintf("edge 1 serves every edit %s after Redis returned (%d old reads meanwhile); deferred purges flushed after %s", ms(recovery), oldReads, ms(flushed))
	if oldReads > 0 {
		t.Logf("edge 1 served %d old profiles in the %s after Redis returned (the time its purge channel takes to re-subscribe)", oldReads, recovery)
	}
	return r
}

// drillPostgresRestarted: PostgreSQL crashes (stop -m immediate) under a
// write-heavy load and is started again after p.pgDown. The origin answers
// again within 5 s of PostgreSQL being back; every acknowledged write is in
// the database afterwards, row by row; reads of held profiles never fail.
func drillPostgresRestarted(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "PostgreSQL crashed, back after " + p.pgDown.String()}
	var down, back time.Time
	outs := phases(p, tr.mix(0.3, -1), func() {
		down = time.Now()
		s.pg.Crash()
		time.Sleep(p.pgDown)
		s.pg.Start()
		back = time.Now()
		// The load goes on; p.after of it follows.
		time.Sleep(5 * time.Second)
	})
	r.tally(outs)
	for _, f := range failures(outs, func(o outcome) bool { return o.op == "read" && o.kind != "" }) {
		t.Errorf("a profile the edges hold failed: %s", f)
	}
	cell, problems := tr.checkWrites(down, 0)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = cell
	rec := time.Duration(-1)
	for _, o := range outs {
		if o.op == "write" && o.kind == "" && !o.start.Before(back) {
			if d := o.start.Add(o.dur).Sub(back); rec < 0 || d < rec {
				rec = d
			}
		}
	}
	switch {
	case rec < 0:
		t.Errorf("no write acknowledged after PostgreSQL came back")
		r.recovery = "never"
	case rec > 5*time.Second:
		t.Errorf("the origin acknowledged its first write %s after PostgreSQL was back, want within 5 s", rec)
		fallthrough
	default:
		r.recovery = "first ack " + ms(rec) + " after PostgreSQL back"
	}
	statuses := map[string]int{}
	for _, o := range during(outs, down, back) {
		if o.op == "write" {
			statuses[o.kind]++
		}
	}
	t.Logf("writes while PostgreSQL was down: %v", statuses)
	for _, line := range strings.Split(s.originProc.Output(), "\n") {
		if strings.Contains(line, `msg="request failed"`) {
			t.Logf("origin: %s", line)
		}
	}
	return r
}

// setBio replaces user id's bio through edge e (a full profile PUT, as the
// API wants), failing unless the origin acknowledges it.
func (tr *traffic) setBio(ctx context.Context, e int, id int64, bio string) error {
	o := do(ctx, tr.client, "http://"+tr.s.originAddr, "GET", "/api/users/"+strconv.FormatInt(id, 10)+"/profile", tr.tokens[id], "", 200)
	if o.kind != "" {
		return fmt.Errorf("read profile %d at the origin: %s %q", id, o.kind, o.body)
	}
	var doc struct {
		Name   string   `json:"name"`
		Age    int      `json:"age"`
		Gender string   `json:"gender"`
		Bio    string   `json:"bio"`
		Photos []string `json:"photos"`
	}
	if err := json.Unmarshal([]byte(o.body), &doc); err != nil {
		return fmt.Errorf("profile %d: %w", id, err)
	}
	doc.Bio = bio
	b, _ := json.Marshal(doc)
	o = do(ctx, tr.client, tr.s.edges[e].URL(), "PUT", "/api/users/me/profile", tr.tokens[id], string(b), 200)
	if o.kind != "" {
		return fmt.Errorf("PUT profile %d: %s %q", id, o.kind, o.body)
	}
	return nil
}

// bioOf is the bio edge e serves for id's profile to a reader ("" when it
// fails).
func (tr *traffic) bioOf(ctx context.Context, e int, id int64) string {
	o := do(ctx, tr.client, tr.s.edges[e].URL(), "GET", "/api/users/"+strconv.FormatInt(id, 10)+"/profile", tr.tokens[lastReader], "", 200)
	var doc struct {
		Bio string `json:"bio"`
	}
	if o.kind != "" || json.Unmarshal([]byte(o.body), &doc) != nil {
		return ""
	}
	return doc.Bio
}

// profileOwner is the user id in a profile path.
func profileOwner(path string) int64 {
	id, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(path, "/api/users/"), "/profile"), 10, 64)
	return id
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
