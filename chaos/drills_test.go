package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// drillOriginKilled: the origin is killed under load for p.originDown. The
// profiles the edges hold are served throughout (fresh hits: they live 5
// minutes at the edge); a reader who asks for them revalidated
// (Cache-Control: max-age=0) gets the held copy with a Cache-Status saying
// stale-if-error; writes fail fast with a 503 problem, none half-applied;
// every acknowledged write is in the database afterwards.
func drillOriginKilled(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "origin killed for " + p.originDown.String()}
	var down, back time.Time
	sieAsked, sieServed := 0, 0
	outs := phases(p, tr.mix(0.1, -1), func() {
		down = time.Now()
		s.KillOrigin()
		time.Sleep(200 * time.Millisecond) // surely gone
		for e := range s.edges {
			for _, path := range tr.warm[:5] {
				sieAsked++
				o := tr.revalidate(context.Background(), e, path)
				if o.kind != "" || !strings.Contains(o.cache, "detail=stale-if-error") {
					t.Errorf("%s revalidated through edge %d with the origin down: %s (status %d, Cache-Status %q), want the held copy, stale-if-error", path, e, o.kind, o.status, o.cache)
					continue
				}
				sieServed++
			}
		}
		time.Sleep(max(p.originDown-time.Since(down), 0))
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
	r.recovery = fmt.Sprintf("%s; %d/%d forced revalidations answered stale-if-error", firstAckAfter(outs, back), sieServed, sieAsked)
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

// redisStaleBound is how long after Redis answers again an edge may still
// serve a profile another edge edited during the outage: each edge retries
// its purge channel every 100 ms (tiered's probeEvery) and drops its L1 the
// moment the subscription is back; the rest is one dial and one SUBSCRIBE
// round trip on a loaded machine. Redis answered before the drill's clock
// starts (testredis.Start returns once it has answered a PING). Quiet, the
// last old read came 0.1 s after; in `make test`, where the drill runs
// beside other packages' race-enabled tests, one run saw 621 ms (CI,
// 2026-12-07, load average ≈ 10), hence 1 s. Without the L1 drop old reads
// would go on until the entries' max-age (minutes).
const redisStaleBound = time.Second

// redisSettle is how long a re-subscribed edge fills from the origin
// rather than from Redis (tiered's l2Settle): the other edges' deferred
// purges must reach Redis within it.
const redisSettle = 2 * time.Second

// redisWatch is how long edge 1 is watched after Redis is back: past
// redisSettle, so that what it reads from Redis after that is checked too.
const redisWatch = redisSettle + time.Second

// drillRedisKilled: Redis is stopped under load for p.redisDown, then
// started again (empty). No request fails at the edges. Profiles edited
// through edge 0 meanwhile cannot reach edge 1 (their purges wait for
// Redis), which answers from its L1 through the outage; once Redis answers
// again edge 1 serves none of them old later than redisStaleBound (it
// re-subscribes within 100 ms and drops its L1), and the deferred purges
// reach Redis.
func drillRedisKilled(t *testing.T, p plan, s *stack, tr *traffic) *row {
	r := &row{fault: "Redis killed for " + p.redisDown.String()}
	ctx := context.Background()
	owners := make([]int64, 0, 8)
	for _, path := range tr.warm[:8] {
		owners = append(owners, profileOwner(path))
	}
	newBio := map[int64]string{}
	var back time.Time
	var flushed, lastOld time.Duration
	oldDuring, oldAfter, lateOld, failedReads := 0, 0, 0, 0
	lastOld = -1
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
		// What the drill is about: edge 1 cannot hear edge 0's purges.
		for _, id := range owners {
			if tr.bioOf(ctx, 1, id) != newBio[id] {
				oldDuring++
			}
		}
		s.redis.Start()
		back = time.Now()
		// The purges edge 0 deferred reach Redis (and so every edge)
		// once it notices Redis is back.
		settled := make(chan struct{})
		go func() {
			defer close(settled)
			flushed = until(t, back, 60*time.Second, "no deferred purge left at the edges after Redis returned", s.purgesSettled)
		}()
		// Edge 1 must serve the new profiles once Redis answers again,
		// and keep doing so (from Redis too, once it reads it again).
		for time.Since(back) < redisWatch {
			for _, id := range owners {
				start := time.Since(back)
				switch tr.bioOf(ctx, 1, id) {
				case newBio[id]:
				case "":
					failedReads++
				default:
					oldAfter++
					lastOld = max(lastOld, start)
					if start > redisStaleBound {
						lateOld++
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		<-settled
	})
	r.tally(outs)
	for _, f := range failures(outs, func(o outcome) bool { return o.kind != "" }) {
		t.Errorf("a request failed at the edges: %s", f)
	}
	if failedReads > 0 {
		t.Errorf("%d of edge 1's reads of the edited profiles failed after Redis returned", failedReads)
	}
	if flushed > redisSettle {
		t.Errorf("edge 0's deferred purges reached Redis %s after it returned, past the %s a re-subscribed edge waits before reading Redis again: had Redis kept its data (a healed partition), edge 1 could have read the edited profiles there", ms(flushed), redisSettle)
	}
	if lateOld > 0 {
		t.Errorf("edge 1 served %d edited profiles old more than %s after Redis returned (the last %s after)", lateOld, redisStaleBound, ms(lastOld))
	}
	cell, problems := tr.checkWrites(time.Time{}, 0)
	for _, pr := range problems {
		t.Error(pr)
	}
	r.acked = cell
	after := "none old after Redis returned"
	if oldAfter > 0 {
		after = fmt.Sprintf("%d old reads, the last %s after Redis returned (bound %s)", oldAfter, ms(lastOld), ms(redisStaleBound))
	}
	r.recovery = fmt.Sprintf("edge 1 (%d/%d edits unseen during the outage): %s; deferred purges flushed after %s", oldDuring, len(owners), after, ms(flushed))
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

// revalidate reads path through edge e as a reader who wants it
// revalidated with the origin (Cache-Control: max-age=0).
func (tr *traffic) revalidate(ctx context.Context, e int, path string) outcome {
	o := outcome{op: "revalidate", edge: e, key: path, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, "GET", tr.s.edges[e].URL()+path, nil)
	if err != nil {
		o.kind = "bad request: " + err.Error()
		return o
	}
	req.Header.Set("Authorization", "Bearer "+tr.tokens[lastReader])
	req.Header.Set("Cache-Control", "max-age=0")
	res, err := tr.client.Do(req)
	if err != nil {
		o.kind = errKind(err)
		return o
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	o.dur, o.status, o.cache = time.Since(o.start), res.StatusCode, res.Header.Get("Cache-Status")
	if res.StatusCode != http.StatusOK {
		o.kind = fmt.Sprintf("http %d", res.StatusCode)
	}
	return o
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
