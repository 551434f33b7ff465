package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Who does what in the drills' traffic (demo users 1..demoUsers).
const (
	firstReader, lastReader = 300, 399 // read profiles
	firstWriter, lastWriter = 200, 299 // swipe
	lastTarget              = 199      // swiped: 1..lastTarget
)

// traffic is the drills' steady mix: profile reads of keys the edges hold
// and swipes, whose acknowledgements are logged to be checked against the
// database afterwards.
type traffic struct {
	t      testing.TB
	s      *stack
	client *http.Client
	tokens map[int64]string
	warm   []string // profile paths both edges hold

	mu      sync.Mutex
	next    map[int64]int64 // writer -> next target
	acked   map[[2]int64]time.Time
	refused map[[2]int64]outcome // writes answered 503
	unknown map[[2]int64]outcome // writes without an answer (or a 5xx other than 503)
	existed map[[2]int64]bool    // swipes in the database before the drill (the seed made some)
}

func newTraffic(t testing.TB, s *stack) *traffic {
	tr := &traffic{t: t, s: s, client: httpClient(), tokens: map[int64]string{}, next: map[int64]int64{},
		acked: map[[2]int64]time.Time{}, refused: map[[2]int64]outcome{}, unknown: map[[2]int64]outcome{}}
	for id := int64(1); id <= demoUsers; id++ {
		tr.tokens[id] = token(t, id)
	}
	for w := int64(firstWriter); w <= lastWriter; w++ {
		tr.next[w] = 1
	}
	return tr
}

// warmUp reads the profiles of users 1..n through both edges until each
// edge serves them as hits; those answering 200 are the warm set.
func (tr *traffic) warmUp(n int) {
	tr.t.Helper()
	ctx := context.Background()
	tr.warm = nil
	for id := 1; id <= n; id++ {
		path := "/api/users/" + strconv.Itoa(id) + "/profile"
		o := do(ctx, tr.client, tr.s.edges[0].URL(), "GET", path, tr.tokens[lastReader], "", 200, 404)
		if o.kind != "" {
			tr.t.Fatalf("warm %s: %s %q", path, o.kind, o.body)
		}
		if o.status != 200 {
			continue
		}
		for e := range tr.s.edges {
			for try := 1; ; try++ {
				o := do(ctx, tr.client, tr.s.edges[e].URL(), "GET", path, tr.tokens[lastReader], "", 200)
				if o.kind == "" && strings.Contains(o.cache, "hit") {
					break
				}
				if try == 3 {
					tr.t.Fatalf("warm %s on edge %d: %s %q, not a hit", path, e, o.kind, o.cache)
				}
			}
		}
		tr.warm = append(tr.warm, path)
	}
	if len(tr.warm) < n/2 {
		tr.t.Fatalf("only %d of %d demo profiles answer 200", len(tr.warm), n)
	}
}

// read reads a random warm profile through edge e as a random reader.
func (tr *traffic) read(ctx context.Context, rng *rand.Rand, e int) outcome {
	reader := int64(firstReader + rng.IntN(lastReader-firstReader+1))
	o := do(ctx, tr.client, tr.s.edges[e].URL(), "GET", tr.warm[rng.IntN(len(tr.warm))], tr.tokens[reader], "", 200)
	o.op, o.edge = "read", e
	return o
}

// swipe sends the next swipe of a random writer through edge e and logs it:
// acknowledged (200/201), refused (503) or unknown (no answer, another 5xx).
func (tr *traffic) swipe(ctx context.Context, rng *rand.Rand, e int) outcome {
	tr.mu.Lock()
	w := int64(firstWriter + rng.IntN(lastWriter-firstWriter+1))
	target := tr.nextTargetLocked(w)
	tr.mu.Unlock()
	if target > lastTarget {
		return outcome{op: "write", kind: "writer has swiped everyone", start: time.Now()}
	}
	return tr.swipePair(ctx, e, w, target)
}

// nextTargetLocked is writer w's next target, past those the seed had it
// swipe already (a pass over a seeded like is a 409 conflict); above
// lastTarget when none is left. tr.mu is held.
func (tr *traffic) nextTargetLocked(w int64) int64 {
	for tr.next[w] <= lastTarget && tr.existed[[2]int64{w, tr.next[w]}] {
		tr.next[w]++
	}
	target := tr.next[w]
	tr.next[w]++
	return target
}

// swipePair sends one swipe and logs its answer.
func (tr *traffic) swipePair(ctx context.Context, e int, w, target int64) outcome {
	o := do(ctx, tr.client, tr.s.edges[e].URL(), "POST", "/api/swipes", tr.tokens[w],
		fmt.Sprintf(`{"target_id":%d,"direction":"pass"}`, target), 200, 201)
	o.op, o.edge, o.key = "write", e, fmt.Sprintf("%d->%d", w, target)
	p := [2]int64{w, target}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case o.status == http.StatusOK || o.status == http.StatusCreated:
		tr.acked[p] = o.start
		delete(tr.unknown, p)
		delete(tr.refused, p)
	case o.status == http.StatusServiceUnavailable:
		tr.refused[p] = o
	case o.status == 0 || o.status >= 500:
		tr.unknown[p] = o
	}
	return o
}

// mix is a step for drive: frac of the steps are swipes, the rest reads,
// spread over both edges (or only edge only, when only >= 0).
func (tr *traffic) mix(frac float64, only int) func(ctx context.Context, i int) outcome {
	return func(ctx context.Context, i int) outcome {
		rng := rand.New(rand.NewPCG(uint64(i), 0xc4a05))
		e := rng.IntN(2)
		if only >= 0 {
			e = only
		}
		if rng.Float64() < frac {
			return tr.swipe(ctx, rng, e)
		}
		return tr.read(ctx, rng, e)
	}
}

// swipesInDB reads every swipe of the writers from the database.
func (tr *traffic) swipesInDB() map[[2]int64]bool {
	tr.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, tr.s.pg.URL())
	if err != nil {
		tr.t.Fatalf("connect to check swipes: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT swiper_id, target_id FROM swipes WHERE swiper_id BETWEEN $1 AND $2`, firstWriter, lastWriter)
	if err != nil {
		tr.t.Fatalf("read swipes: %v", err)
	}
	in := map[[2]int64]bool{}
	for rows.Next() {
		var p [2]int64
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			tr.t.Fatalf("read swipes: %v", err)
		}
		in[p] = true
	}
	if err := rows.Err(); err != nil {
		tr.t.Fatalf("read swipes: %v", err)
	}
	return in
}

// inFlight is how long after a fault began a write may still have reached
// the origin (or PostgreSQL) before it: its outcome is unknown to the
// client, which retries it (swipes are idempotent).
const inFlight = 500 * time.Millisecond

// checkWrites compares the write log with the database row by row. Every
// acknowledged swipe must be there; no swipe refused with a 503 sent once
// the fault was established (inFlight after faultAt; zero: no fault of
// writes) may be. Those refused or unanswered around the fault may have
// been applied (the response was lost, not the write): like any client, the
// drill then retries every refused and unanswered swipe through edge e and
// each must be acknowledged and in the database. It returns the table's
// cell and the violations.
func (tr *traffic) checkWrites(faultAt time.Time, e int) (cell string, problems []string) {
	tr.t.Helper()
	in := tr.swipesInDB()
	tr.mu.Lock()
	established := 0
	for p, o := range tr.refused {
		if faultAt.IsZero() || o.start.Before(faultAt.Add(inFlight)) {
			continue
		}
		established++
		if in[p] && !tr.existed[p] {
			problems = append(problems, fmt.Sprintf("swipe %d->%d refused with 503 at %s is in the database (the origin was down)", p[0], p[1], o.start.Format(time.StampMilli)))
		}
	}
	var retry [][2]int64
	appliedAnyway := 0
	for _, m := range []map[[2]int64]outcome{tr.refused, tr.unknown} {
		for p := range m {
			retry = append(retry, p)
			if in[p] && !tr.existed[p] {
				appliedAnyway++
			}
		}
	}
	tr.mu.Unlock()
	for _, p := range retry {
		if o := tr.swipePair(context.Background(), e, p[0], p[1]); o.kind != "" {
			problems = append(problems, fmt.Sprintf("swipe %d->%d retried after the drill: %s %q", p[0], p[1], o.kind, truncate(o.body, 120)))
		}
	}
	in = tr.swipesInDB()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for p, at := range tr.acked {
		if !in[p] {
			problems = append(problems, fmt.Sprintf("swipe %d->%d acknowledged at %s is not in the database", p[0], p[1], at.Format(time.StampMilli)))
		}
	}
	cell = fmt.Sprintf("%d/%d acked in DB", len(tr.acked)-countMissing(tr.acked, in), len(tr.acked))
	if !faultAt.IsZero() {
		cell += fmt.Sprintf("; %d refused while down, none applied", established)
	}
	if len(retry) > 0 {
		cell += fmt.Sprintf("; %d failed retried and acked (%d had been applied)", len(retry), appliedAnyway)
	}
	return cell, problems
}

func countMissing(m map[[2]int64]time.Time, in map[[2]int64]bool) int {
	n := 0
	for p := range m {
		if !in[p] {
			n++
		}
	}
	return n
}

// resetLog forgets the write log (each drill checks its own writes) and
// notes the swipes already in the database.
func (tr *traffic) resetLog() {
	existed := tr.swipesInDB()
	tr.mu.Lock()
	tr.existed = existed
	tr.acked = map[[2]int64]time.Time{}
	tr.refused = map[[2]int64]outcome{}
	tr.unknown = map[[2]int64]outcome{}
	tr.mu.Unlock()
}

// profile reads user id's profile document through edge e as the owner.
func (tr *traffic) profile(ctx context.Context, e int, id int64) (map[string]any, outcome) {
	o := do(ctx, tr.client, tr.s.edges[e].URL(), "GET", "/api/users/"+strconv.FormatInt(id, 10)+"/profile", tr.tokens[id], "", 200)
	var p map[string]any
	if o.kind == "" {
		if err := json.Unmarshal([]byte(o.body), &p); err != nil {
			o.kind = "bad json"
		}
	}
	return p, o
}
