package origin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/origin"
)

// TestLeakHunt drives randomized traffic from many users — with and without
// tokens, with other users' tokens, conditional, HEAD and Range requests,
// private lists, swipes, blocks, profiles made inactive and active again,
// profile edits and purges — through two edges (the repository's Caddyfile,
// sharing one Redis) in front of the origin, and counts every response the
// origin would have refused that requester. There must be none.
//
// Every private body says whose it is: a proxy between the edges and the
// origin writes the requesting user's id into it, so a private response
// served to anyone else is seen wherever an edge serves it from. Shared
// profiles are checked against a model of what the test did: an anonymous
// requester, a viewer in a block relation with the owner, or anyone but
// the owner while the profile is inactive must never get it (200, 206 or
// 304). A change made through one edge holds on that edge as soon as its
// response arrived, and on the other edge within 1 s (purges cross edges
// through Redis).
//
// SPARK_LEAKHUNT_REQUESTS sets the number of requests (default 2,500; the
// long hunt runs hundreds of thousands).
func TestLeakHunt(t *testing.T) {
	total := 2500
	if v := os.Getenv("SPARK_LEAKHUNT_REQUESTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("SPARK_LEAKHUNT_REQUESTS=%q: want a positive number", v)
		}
		total = n
	}
	bin := sparkBinary(t)
	redis := testredis.Start(t)
	originAddr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DemoUsers: 80, DemoSeed: 11})
	marker := startOwnerMarker(t, originAddr)
	caddyfile := caddyfileWithRedis(t)
	const purgeToken = "leak-hunt-purge-token"
	var edges [2]string
	var admins [2]string
	ports := freePorts(t, 2*len(edges))
	for i := range edges {
		port, admin := ports[2*i], ports[2*i+1]
		admins[i] = "http://127.0.0.1:" + admin
		edges[i] = startEdgeProcess(t, bin, caddyfile, port, t.TempDir(),
			"SPARK_LISTEN=:"+port, "SPARK_ORIGIN="+marker, "SPARK_ADMIN=127.0.0.1:"+admin,
			"SPARK_REDIS="+redis.Addr(), "SPARK_REDIS_PREFIX=leakhunt:", "SPARK_PURGE_TOKEN="+purgeToken, "SPARK_JWT_SECRET="+origin.DevJWTSecret)
	}

	h := newHunt(t, originAddr, edges, admins, purgeToken)
	h.prepare()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			for next.Add(1) <= int64(total) {
				h.step(rng)
			}
		}(uint64(w + 1))
	}
	wg.Wait()

	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("leak hunt: %d requests, %d violations; %d hits (%d from Redis), %d refused stored responses (deny list), %d 401, %d blocks, %d profiles made inactive, %d purges",
		total, len(h.violations), h.count["hit"], h.count["l2"], h.count["denied"], h.count["401"], h.count["block"], h.count["deactivate"], h.count["purge"])
	for i, v := range h.violations {
		if i == 20 {
			t.Errorf("… and %d more", len(h.violations)-20)
			break
		}
		t.Error(v)
	}
	// The hunt must have exercised what it hunts for.
	for _, k := range []string{"hit", "l2", "denied", "401", "block", "deactivate", "304"} {
		if h.count[k] == 0 && total >= 2000 {
			t.Errorf("the hunt never produced a %q response: it tested less than it claims", k)
		}
	}
}

// hunt is the traffic generator, the model of what it changed, and the
// checker.
type hunt struct {
	t          *testing.T
	origin     string
	edges      [2]string
	admins     [2]string
	purgeToken string
	tokens     map[int64]string
	users      []int64 // everyone who sends requests
	popular    []int64 // whose profiles are requested (so they get cached)
	client     *http.Client

	userMu map[int64]*sync.Mutex // one profile change per user at a time

	mu         sync.Mutex
	blocks     map[[2]int64]change  // blocked pair (low id first) -> when it took effect
	inactive   map[int64][]interval // owner -> when the profile was inactive
	etags      map[int64]string     // last ETag seen per profile
	violations []string
	count      map[string]int
}

// change is a state change and the edge it went through.
type change struct {
	at   time.Time // its response arrived
	edge int
}

// interval is a time the profile was inactive: from a deactivation's
// response to the moment its reactivation was sent (zero: still inactive).
type interval struct {
	from  change
	until time.Time
}

func newHunt(t *testing.T, originAddr string, edges, admins [2]string, purgeToken string) *hunt {
	h := &hunt{t: t, origin: "http://" + originAddr, edges: edges, admins: admins, purgeToken: purgeToken,
		tokens: map[int64]string{}, userMu: map[int64]*sync.Mutex{}, blocks: map[[2]int64]change{},
		inactive: map[int64][]interval{}, etags: map[int64]string{}, count: map[string]int{},
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for id := int64(1); id <= 40; id++ {
		tok, err := origin.IssueToken(origin.DevJWTSecret, id, 2*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[id] = tok
		h.users = append(h.users, id)
		h.userMu[id] = new(sync.Mutex)
	}
	h.popular = h.users[:12]
	return h
}

// prepare makes every popular profile active and records the blocks the
// demo data already has between users of the hunt (the origin refuses
// those profiles from the start).
func (h *hunt) prepare() {
	for _, id := range h.popular {
		if code := h.setActive(id, true, -1); code != http.StatusOK {
			h.t.Fatalf("activate %d: %d", id, code)
		}
	}
	for _, r := range h.users {
		for _, x := range h.popular {
			if r == x {
				continue
			}
			res, _ := h.do(h.origin, "GET", profilePath(x), r, nil)
			switch res.StatusCode {
			case http.StatusOK:
			case http.StatusNotFound:
				h.blocks[pair(r, x)] = change{at: time.Now().Add(-time.Hour), edge: -1}
			default:
				h.t.Fatalf("origin: profile %d for %d: %d", x, r, res.StatusCode)
			}
		}
	}
}

func pair(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

func profilePath(id int64) string { return "/api/users/" + strconv.FormatInt(id, 10) + "/profile" }

// step sends one random request and checks its answer.
func (h *hunt) step(rng *rand.Rand) {
	e := rng.IntN(2)
	me := h.users[rng.IntN(len(h.users))]
	x := h.popular[rng.IntN(len(h.popular))]
	switch p := rng.IntN(100); {
	case p < 50:
		h.readProfile(rng, e, me, x)
	case p < 56:
		path := "/api/users/me/profile"
		if rng.IntN(2) == 0 {
			path = profilePath(me)
		}
		h.readPrivate(e, me, path)
	case p < 66:
		h.readPrivate(e, me, "/api/matches/suggestions?limit=10")
	case p < 72:
		h.readPrivate(e, me, "/api/matches")
	case p < 76:
		h.readPrivate(e, me, "/api/conversations")
	case p < 82:
		target := h.users[rng.IntN(len(h.users))]
		if target != me {
			h.do(h.edges[e], "POST", "/api/swipes", me, strings.NewReader(fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, target)))
		}
	case p < 84:
		h.block(e, me, x)
	case p < 86:
		h.toggleActive(e, x)
	case p < 88:
		h.editBio(rng, e, x)
	case p < 90:
		h.purge(rng, e, x)
	default:
		h.readProfile(rng, e, me, x)
	}
}

// readProfile asks edge e for x's profile as me (or anonymously, or with a
// garbage token), in one of the ways a client can: GET, HEAD, conditional,
// Range.
func (h *hunt) readProfile(rng *rand.Rand, e int, me, x int64) {
	as := me
	var hdr []string
	switch rng.IntN(20) {
	case 0, 1:
		as = 0 // anonymous
	case 2:
		as = -1 // a garbage token
	}
	method := "GET"
	switch rng.IntN(10) {
	case 0:
		method = "HEAD"
	case 1:
		hdr = append(hdr, "Range", "bytes=0-9")
	case 2, 3, 4:
		h.mu.Lock()
		if etag := h.etags[x]; etag != "" {
			hdr = append(hdr, "If-None-Match", etag)
		}
		h.mu.Unlock()
	}
	start := time.Now()
	res, body := h.do(h.edges[e], method, profilePath(x), as, nil, hdr...)
	end := time.Now()
	served := res.StatusCode == http.StatusOK || res.StatusCode == http.StatusPartialContent || res.StatusCode == http.StatusNotModified
	h.mu.Lock()
	defer h.mu.Unlock()
	if served && res.Header.Get("ETag") != "" {
		h.etags[x] = res.Header.Get("ETag")
	}
	if !served {
		return
	}
	why := ""
	switch {
	case as <= 0:
		why = "no valid token"
	case as != x && h.blockedLocked(as, x, e, start):
		why = "viewer in a block relation with the owner"
	case as != x && h.inactiveLocked(x, e, start, end):
		why = "profile inactive"
	}
	if why != "" {
		h.violations = append(h.violations, fmt.Sprintf("edge %d served %s %s to user %d (%s): %d %q %s",
			e, method, profilePath(x), as, why, res.StatusCode, res.Header.Get("Cache-Status"), truncate(body, 120)))
	}
}

// blockedLocked reports whether a block between a and b had taken effect,
// for edge e, before t.
func (h *hunt) blockedLocked(a, b int64, e int, t time.Time) bool {
	c, ok := h.blocks[pair(a, b)]
	return ok && c.effective(e).Before(t)
}

// inactiveLocked reports whether x's profile was inactive, for edge e, for
// the whole of [start, end].
func (h *hunt) inactiveLocked(x int64, e int, start, end time.Time) bool {
	for _, iv := range h.inactive[x] {
		if iv.from.effective(e).Before(start) && (iv.until.IsZero() || iv.until.After(end)) {
			return true
		}
	}
	return false
}

// effective is when a change must hold on edge e: at once on the edge it
// went through, within a second on the other one.
func (c change) effective(e int) time.Time {
	if c.edge == e || c.edge < 0 {
		return c.at
	}
	return c.at.Add(time.Second)
}

// readPrivate fetches one of me's private resources and checks it is me's.
func (h *hunt) readPrivate(e int, me int64, path string) {
	res, body := h.do(h.edges[e], "GET", path, me, nil)
	if res.StatusCode != http.StatusOK {
		return
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		h.fail("edge %d: %s for %d: not a JSON object: %v", e, path, me, err)
		return
	}
	owner, ok := v[ownerField]
	if !ok && path == profilePath(me) && string(v["id"]) == strconv.FormatInt(me, 10) {
		// One's own profile by number may be the shared copy everyone
		// else gets (the edge cannot tell the number is the requester's):
		// nothing private in it.
		return
	}
	if !ok {
		h.fail("edge %d: %s for %d: private response without its owner (%q)", e, path, me, res.Header.Get("Cache-Control"))
		return
	}
	if string(owner) != strconv.FormatInt(me, 10) {
		h.fail("edge %d served user %s's %s to user %d: %q", e, owner, path, me, res.Header.Get("Cache-Status"))
	}
}

// block makes me block x (rarely: blocks are for good), through edge e.
func (h *hunt) block(e int, me, x int64) {
	if me == x {
		return
	}
	res, _ := h.do(h.edges[e], "POST", "/api/users/"+strconv.FormatInt(x, 10)+"/block", me, nil)
	if res.StatusCode != http.StatusNoContent {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.blocks[pair(me, x)]; !ok {
		h.blocks[pair(me, x)] = change{at: time.Now(), edge: e}
		h.count["block"]++
	}
}

// toggleActive makes x's profile inactive, or active again, through edge e.
func (h *hunt) toggleActive(e int, x int64) {
	mu := h.userMu[x]
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	active := h.activeLocked(x)
	if !active {
		// Reactivating: from now on the origin may serve it again.
		h.inactive[x][len(h.inactive[x])-1].until = time.Now()
	}
	h.mu.Unlock()
	if code := h.setActive(x, !active, e); code != http.StatusOK {
		h.fail("edge %d: set profile %d active=%v: %d", e, x, !active, code)
		return
	}
	if active {
		h.mu.Lock()
		h.inactive[x] = append(h.inactive[x], interval{from: change{at: time.Now(), edge: e}})
		h.count["deactivate"]++
		h.mu.Unlock()
	}
}

// activeLocked reports whether the model has x's profile active (the
// caller holds h.mu).
func (h *hunt) activeLocked(x int64) bool {
	ivs := h.inactive[x]
	return len(ivs) == 0 || !ivs[len(ivs)-1].until.IsZero()
}

// setActive writes x's profile with the active flag, through edge e (or the
// origin itself for e < 0), keeping the other fields.
func (h *hunt) setActive(x int64, active bool, e int) int {
	base := h.origin
	if e >= 0 {
		base = h.edges[e]
	}
	res, body := h.do(h.origin, "GET", "/api/users/me/profile", x, nil)
	if res.StatusCode != http.StatusOK {
		return res.StatusCode
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		h.t.Errorf("profile %d: %v", x, err)
		return 0
	}
	upd := map[string]any{"name": p["name"], "age": p["age"], "gender": p["gender"], "bio": p["bio"], "active": active}
	b, _ := json.Marshal(upd)
	res, _ = h.do(base, "PUT", "/api/users/me/profile", x, strings.NewReader(string(b)))
	return res.StatusCode
}

// editBio changes x's bio (keeping the active flag as the model has it).
func (h *hunt) editBio(rng *rand.Rand, e int, x int64) {
	mu := h.userMu[x]
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	active := h.activeLocked(x)
	h.mu.Unlock()
	body := fmt.Sprintf(`{"name":"User %d","age":30,"gender":"woman","bio":"bio %d","active":%v}`, x, rng.IntN(1e6), active)
	h.do(h.edges[e], "PUT", "/api/users/me/profile", x, strings.NewReader(body))
}

// purge removes x's tags on every edge through the admin API of edge e.
func (h *hunt) purge(rng *rand.Rand, e int, x int64) {
	tag := []string{"user:", "profile:", "suggestions:", "matches:"}[rng.IntN(4)] + strconv.FormatInt(x, 10)
	req, _ := http.NewRequest("POST", h.admins[e]+"/spark_cache/purge", strings.NewReader(`{"tags":["`+tag+`"]}`))
	req.Header.Set("Authorization", "Bearer "+h.purgeToken)
	res, err := h.client.Do(req)
	if err != nil {
		h.fail("purge through edge %d: %v", e, err)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		h.fail("purge through edge %d: %d", e, res.StatusCode)
		return
	}
	h.mu.Lock()
	h.count["purge"]++
	h.mu.Unlock()
}

// do sends a request as user `as` (0: no token, -1: a garbage token) and
// counts and checks what every response must satisfy.
func (h *hunt) do(base, method, path string, as int64, body io.Reader, hdr ...string) (*http.Response, string) {
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	switch {
	case as > 0:
		req.Header.Set("Authorization", "Bearer "+h.tokens[as])
	case as < 0:
		req.Header.Set("Authorization", "Bearer not.a.token")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if base != h.origin {
		// Both edges serve one site name, as behind a load balancer: they
		// share its cache keys in Redis.
		req.Host = "localhost"
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.fail("%s %s%s: %v", method, base, path, err)
		return &http.Response{StatusCode: 0, Header: http.Header{}}, ""
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range []string{"Cache-Tags", "Spark-Purge", "Spark-Deny-Users"} {
		if v := res.Header.Get(f); v != "" && base != h.origin {
			h.violations = append(h.violations, fmt.Sprintf("%s %s: %s reached the client: %q", method, path, f, v))
		}
	}
	cs := res.Header.Get("Cache-Status")
	if os.Getenv("SPARK_LEAKHUNT_DEBUG") != "" {
		h.t.Logf("%s %s as %d -> %d %q", method, path, as, res.StatusCode, cs)
	}
	switch {
	case strings.Contains(cs, "; hit"):
		h.count["hit"]++
		if strings.Contains(cs, "detail=l2") {
			h.count["l2"]++
		}
	case strings.Contains(cs, "detail=denied"):
		h.count["denied"]++
	}
	switch res.StatusCode {
	case http.StatusUnauthorized:
		h.count["401"]++
	case http.StatusNotModified:
		h.count["304"]++
	}
	return res, string(b)
}

func (h *hunt) fail(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
