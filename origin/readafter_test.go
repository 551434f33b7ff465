package origin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testpg"
	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// Spark-Read-After over HTTP, with two origins on one primary and one real
// streaming replica whose replay is paused: ann's profile update through
// the first origin answers with her position; the second origin, which
// knows nothing of the write, serves her profile fresh (from the primary)
// when her request carries the position and the replica's old copy when it
// does not. Reads do not carry a position back; a malformed one is a 400.
func TestReadAfterAcrossOrigins(t *testing.T) {
	primary, replica, boot := pgtest.Replicated(t)
	ann, conv := matchedPair(t, boot)
	history := fmt.Sprintf("/api/conversations/%d/messages", conv)
	primary.WaitReplayed(t, replica)
	origins := make([]*api, 2)
	for i := range origins {
		origins[i] = newAPI(t, pgtest.OpenReplicated(t, primary, replica))
	}
	first, second := origins[0], origins[1]
	tok := token(t, ann)
	path := fmt.Sprintf("/api/users/%d/profile", ann)
	name := func(r resp) string {
		t.Helper()
		expect(t, r, 200, "profile")
		var p store.Profile
		r.json(t, &p)
		return p.Name
	}

	replica.PauseReplay(t)
	r := first.do("PUT", "/api/users/me/profile", tok, `{"name":"ann-2","age":30,"gender":"woman","bio":"","photos":[]}`)
	expect(t, r, 200, "update profile")
	pos := r.hdr.Get(contract.ReadAfter)
	if _, err := contract.ParsePosition(pos); err != nil {
		t.Fatalf("the write's response carries %s %q: %v", contract.ReadAfter, pos, err)
	}
	if n := name(second.do("GET", path, tok, "", contract.ReadAfter, pos)); n != "ann-2" {
		t.Fatalf("another origin, given ann's position, reads %q: older than her own write", n)
	}
	r = second.do("GET", path, tok, "")
	if n := name(r); n != "ann" {
		t.Fatalf("another origin without her position reads %q; want the lagging replica's %q", n, "ann")
	}
	if v := r.hdr.Get(contract.ReadAfter); v != "" {
		t.Fatalf("a read answered with %s %q: only writes send a position", contract.ReadAfter, v)
	}
	// The replica's read says how far the replica had replayed (before
	// ann's write), so that an edge that heard the write's purge can tell.
	if at, err := contract.ParsePosition(r.hdr.Get(contract.ReadAt)); err != nil {
		t.Fatalf("a read from the replica answered with %s %q: %v", contract.ReadAt, r.hdr.Get(contract.ReadAt), err)
	} else if p, _ := contract.ParsePosition(pos); at >= p {
		t.Fatalf("the paused replica's read is labelled %s, not before ann's write at %s", contract.FormatPosition(at), pos)
	}
	if r := second.do("GET", path, tok, "", contract.ReadAfter, pos); r.hdr.Get(contract.ReadAt) != "" {
		t.Fatalf("a read the primary answered is labelled %s %q", contract.ReadAt, r.hdr.Get(contract.ReadAt))
	}
	// A position from the future (another database, a forged one) is
	// lowered to the primary's position: the response gives the client
	// that position to send instead.
	r = second.do("GET", path, tok, "", contract.ReadAfter, "FFFFFFFF/FFFFFFFF")
	if n := name(r); n != "ann-2" {
		t.Fatalf("with a position the replica never reached ann reads %q", n)
	}
	lowered, err := contract.ParsePosition(r.hdr.Get(contract.ReadAfter))
	if p, _ := contract.ParsePosition(pos); err != nil || lowered < p || lowered == 0xFFFFFFFF_FFFFFFFF {
		t.Fatalf("a far-future position answered with %s %q (%v); want the primary's, at or after ann's write %s", contract.ReadAfter, r.hdr.Get(contract.ReadAfter), err, pos)
	}

	// A message goes through the batcher (a transaction of its own
	// goroutine): its position still reaches the sender's response.
	r = first.do("POST", history, tok, `{"body":"hi bea","client_msg_id":"m1"}`)
	expect(t, r, 201, "send a message")
	pos2, err := contract.ParsePosition(r.hdr.Get(contract.ReadAfter))
	if p1, _ := contract.ParsePosition(pos); err != nil || pos2 <= p1 {
		t.Fatalf("the message's response carries %s %q (%v); want a position after the profile's %s", contract.ReadAfter, r.hdr.Get(contract.ReadAfter), err, pos)
	}
	count := func(r resp) int {
		t.Helper()
		expect(t, r, 200, "history")
		var page struct {
			Messages []store.Message `json:"messages"`
		}
		r.json(t, &page)
		return len(page.Messages)
	}
	if n := count(second.do("GET", history, tok, "", contract.ReadAfter, contract.FormatPosition(pos2))); n != 1 {
		t.Fatalf("another origin, given ann's position, lists %d messages; want her 1", n)
	}
	if n := count(second.do("GET", history, tok, "")); n != 0 {
		t.Fatalf("another origin without her position lists %d messages; want the lagging replica's 0", n)
	}

	for _, bad := range []string{"16", "x/1", "1/2/3", "123456789/0"} {
		expect(t, second.do("GET", path, tok, "", contract.ReadAfter, bad), 400, fmt.Sprintf("%s %q", contract.ReadAfter, bad))
	}
	replica.ResumeReplay(t)

	// Once the replica has caught up, a forged far-future position no
	// longer keeps the user's reads on the primary: they are the
	// replica's again, and the origin counts the lowered positions.
	primary.WaitReplayed(t, replica)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = second.do("GET", path, tok, "", contract.ReadAfter, "FFFFFFFF/FFFFFFFF")
		if name(r) == "ann-2" && r.hdr.Get(contract.ReadAt) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a far-future position still keeps ann's reads off the caught-up replica (%s %q)", contract.ReadAt, r.hdr.Get(contract.ReadAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := second.do("GET", "/metrics", "", "")
	if !metricAtLeast(m.body, "spark_origin_db_replica_read_after_bounded_total", 2) {
		t.Fatalf("spark_origin_db_replica_read_after_bounded_total below 2 after two far-future positions:\n%s", grepLines(m.body, "spark_origin_db_replica"))
	}
	if !strings.Contains(m.body, "spark_origin_db_replica_lag_bytes ") {
		t.Fatalf("no spark_origin_db_replica_lag_bytes gauge:\n%s", grepLines(m.body, "spark_origin_db_replica"))
	}
}

// metricAtLeast reports whether the exposition body has an unlabelled
// sample of name at least min.
func metricAtLeast(body, name string, min float64) bool {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f >= min
		}
	}
	return false
}

// grepLines returns the lines of body that contain s.
func grepLines(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Without a replica the position means nothing: writes send none, and a
// request carrying one is served as any other.
func TestReadAfterWithoutReplica(t *testing.T) {
	st := memory.New()
	a := newAPIWith(t, origin.ServerOptions{Store: st})
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	tok := token(t, ann)
	r := a.do("PUT", "/api/users/me/profile", tok, `{"name":"ann-2","age":30,"gender":"woman","bio":"","photos":[]}`, contract.ReadAfter, "0/10")
	expect(t, r, 200, "update profile")
	if v := r.hdr.Get(contract.ReadAfter); v != "" {
		t.Fatalf("the embedded store's write answered with %s %q", contract.ReadAfter, v)
	}
}

// Spark-Read-After end to end: two edges (the repository's Caddyfile), each
// in front of its own origin, both origins on one primary and one real
// streaming replica with replay paused. Ann updates her profile through the
// first edge; her client echoes the position through the second edge, whose
// origin never saw the write: the edges pass the header both ways and she
// reads her own write. Without the position the second edge's origin
// answers from the lagging replica.
func TestReadAfterThroughEdges(t *testing.T) {
	primary, replica, boot := pgtest.Replicated(t)
	ann := mkUser(t, boot, "ann", 30, "woman", 1, 1, nil)
	primary.WaitReplayed(t, replica)

	edges := edgesWithOwnOrigins(t, primary, replica)
	tok, err := origin.IssueToken(readAfterSecret, ann, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + tok
	client := &http.Client{Timeout: 30 * time.Second}
	own := "/api/users/me/profile"
	name := func(res *http.Response, body string) string {
		t.Helper()
		if res.StatusCode != 200 {
			t.Fatalf("profile: %d %s", res.StatusCode, body)
		}
		var p store.Profile
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("profile %q: %v", body, err)
		}
		return p.Name
	}

	replica.PauseReplay(t)
	res, body := httpDo(t, client, "PUT", edges[0]+own, `{"name":"ann-2","age":30,"gender":"woman","bio":"","photos":[]}`,
		"Authorization", auth, "Content-Type", "application/json")
	if res.StatusCode != 200 {
		t.Fatalf("update through the first edge: %d %s", res.StatusCode, body)
	}
	pos := res.Header.Get(contract.ReadAfter)
	if _, err := contract.ParsePosition(pos); err != nil {
		t.Fatalf("the first edge answered the write with %s %q: %v", contract.ReadAfter, pos, err)
	}
	if n := name(httpDo(t, client, "GET", edges[1]+own, "", "Authorization", auth, contract.ReadAfter, pos)); n != "ann-2" {
		t.Fatalf("through the second edge with her position ann reads %q: older than her own write", n)
	}
	// Another URL for the same profile, not stored at the second edge yet,
	// read without the position: the replica's old copy.
	if n := name(httpDo(t, client, "GET", fmt.Sprintf("%s/api/users/%d/profile", edges[1], ann), "", "Authorization", auth)); n != "ann" {
		t.Fatalf("through the second edge without her position ann reads %q; want the lagging replica's %q", n, "ann")
	}
	replica.ResumeReplay(t)
}

// A shared entry is not refilled from a lagging replica after the write's
// purge. Two edges (the repository's Caddyfile with a shared Redis), each
// in front of its own origin, both origins on one primary and one real
// streaming replica with replay paused. Bea reads ann's profile through the
// second edge (stored, shared). Ann edits it through the first edge: its
// purge, carrying the write's WAL position, reaches the second edge. Bea
// reads again through the second edge: its origin knows nothing of the
// write and reads the replica, which has not replayed it; the edge sees the
// read's position (Spark-Read-At) is before the purge's and asks again with
// Spark-Read-After. Bea gets the new profile, and so does cid, a later
// reader served the stored copy.
func TestPurgedEntryNotRefilledFromLaggingReplica(t *testing.T) {
	primary, replica, boot := pgtest.Replicated(t)
	ann := mkUser(t, boot, "ann", 30, "woman", 1, 1, nil)
	bea := mkUser(t, boot, "bea", 30, "woman", 1, 1, nil)
	cid := mkUser(t, boot, "cid", 30, "woman", 1, 1, nil)
	primary.WaitReplayed(t, replica)

	const secret = "e2e-read-lag-jwt-secret-0123456789abcdef"
	const events = "e2e-read-lag-events-token-0123456789abcdef"
	bin := sparkBinary(t)
	redis := testredis.Start(t)
	caddyfile := caddyfileWithRedis(t)
	var edges, admins [2]string
	for i := range edges {
		addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DatabaseURL: primary.URL(pgtest.ReplicatedDB),
			ReplicaURL: replica.URL(pgtest.ReplicatedDB), JWTSecret: secret, PhotoDir: t.TempDir(),
			Events: origin.EventsConfig{Token: events}})
		ports := freePorts(t, 2)
		admins[i] = "http://127.0.0.1:" + ports[1]
		edges[i] = startEdgeProcess(t, bin, caddyfile, ports[0], t.TempDir(),
			"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+addr, "SPARK_ADMIN=127.0.0.1:"+ports[1],
			"SPARK_REDIS="+redis.Addr(), "SPARK_REDIS_PREFIX=readlag:",
			"SPARK_JWT_SECRET="+secret, "SPARK_EVENTS_TOKEN="+events)
	}
	auth := func(id int64) string {
		tok, err := origin.IssueToken(secret, id, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	client := &http.Client{Timeout: 30 * time.Second}
	profile := fmt.Sprintf("/api/users/%d/profile", ann)
	read := func(edge string, who int64) (name, status string) {
		t.Helper()
		res, body := httpDo(t, client, "GET", edge+profile, "", "Authorization", auth(who))
		if res.StatusCode != 200 {
			t.Fatalf("ann's profile: %d %s", res.StatusCode, body)
		}
		if v := res.Header.Get(contract.ReadAt); v != "" {
			t.Fatalf("a client got %s %q: it is for the edge only", contract.ReadAt, v)
		}
		var p store.Profile
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("profile %q: %v", body, err)
		}
		return p.Name, res.Header.Get(contract.CacheStatus)
	}

	if n, _ := read(edges[1], bea); n != "ann" {
		t.Fatalf("bea's first read: %q", n)
	}
	if n, st := read(edges[1], cid); n != "ann" || !contract.IsCacheHit(st) {
		t.Fatalf("the profile is not a shared entry at the second edge: %q, Cache-Status %q", n, st)
	}

	replica.PauseReplay(t)
	res, body := httpDo(t, client, "PUT", edges[0]+"/api/users/me/profile", `{"name":"ann-2","age":30,"gender":"woman","bio":"","photos":[]}`,
		"Authorization", auth(ann), "Content-Type", "application/json")
	if res.StatusCode != 200 {
		t.Fatalf("ann's update through the first edge: %d %s", res.StatusCode, body)
	}
	// The purge reaches the second edge through Redis within
	// milliseconds; until then it still holds the entry (a hit). The first
	// read it answers otherwise is after the purge.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, st := read(edges[1], bea)
		if !contract.IsCacheHit(st) {
			if n != "ann-2" {
				t.Fatalf("after the purge bea reads %q through the second edge (Cache-Status %q): refilled from the lagging replica", n, st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first edge's purge never reached the second edge")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, who := range []int64{cid, bea} {
		if n, st := read(edges[1], who); n != "ann-2" || !contract.IsCacheHit(st) {
			t.Fatalf("a later reader gets %q (Cache-Status %q); want the stored new profile", n, st)
		}
	}
	if n, _ := read(edges[0], cid); n != "ann-2" {
		t.Fatalf("through the first edge cid reads %q", n)
	}
	// The mechanism, not luck: the second edge's origin read the replica
	// and the edge asked again.
	m, mbody := httpDo(t, client, "GET", admins[1]+"/metrics", "")
	if m.StatusCode != 200 || !metricSampleAtLeast(mbody, "spark_cache_read_behind_refetches_total", 1) {
		t.Fatalf("second edge's spark_cache_read_behind_refetches_total below 1 (%d):\n%s", m.StatusCode, grepLines(mbody, "read_behind"))
	}
	replica.ResumeReplay(t)
}

// metricSampleAtLeast reports whether the exposition body has a sample of
// name (any labels) at least min.
func metricSampleAtLeast(body, name string, min float64) bool {
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if f, err := strconv.ParseFloat(l[i+1:], 64); err == nil && f >= min {
			return true
		}
	}
	return false
}

// spark loadtest echoes Spark-Read-After as the app does, so its checker
// holds behind several origins on a lagging replica: 20 users edit their
// own profiles and read them back through a round-robin proxy over two
// origins sharing one primary and one replica with replay paused. With the
// echo: 0 stale reads of the user's own profile. Without it (the control,
// --no-read-after): the other origin serves the replica's old version and
// the checker counts it.
func TestLoadtestEchoesReadAfter(t *testing.T) {
	primary, replica, boot := pgtest.Replicated(t)
	const users = 20
	for i := range users {
		if id := mkUser(t, boot, fmt.Sprintf("u%d", i+1), 30, "woman", 1, 1, nil); id != int64(i+1) {
			t.Fatalf("user %d got id %d: the load test's users are ids 1..N", i+1, id)
		}
	}
	primary.WaitReplayed(t, replica)
	const secret = "e2e-loadtest-read-after-jwt-secret-0123456789"
	var upstreams []*url.URL
	for range 2 {
		addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DatabaseURL: primary.URL(pgtest.ReplicatedDB),
			ReplicaURL: replica.URL(pgtest.ReplicatedDB), JWTSecret: secret, PhotoDir: t.TempDir()})
		upstreams = append(upstreams, &url.URL{Scheme: "http", Host: addr})
	}
	var next atomic.Uint64
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstreams[next.Add(1)%uint64(len(upstreams))])
	}})
	t.Cleanup(proxy.Close)
	scenario := filepath.Join(t.TempDir(), "own-profile.yaml")
	if err := os.WriteFile(scenario, []byte(`name: own-profile
description: each user edits its own profile and reads it back
users: 20
think: 0ms..5ms
endpoints:
  own_profile:
    path: /api/users/me/profile
    capture:
      my_name: name
      my_age: age
      my_gender: gender
    check: profile
  update_profile:
    method: PUT
    path: /api/users/{{.Me}}/profile
    body: '{"name": {{printf "%q" (.Pick "my_name")}}, "age": {{.Pick "my_age"}}, "gender": "{{.Pick "my_gender"}}", "bio": "{{.Text}}"}'
    check: profile_update
flows:
  - name: edit
    weight: 1
    steps: [own_profile, update_profile, own_profile, own_profile]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := sparkBinary(t)
	run := func(extra ...string) loadtestChecks {
		t.Helper()
		out := filepath.Join(t.TempDir(), "report.json")
		args := append([]string{"loadtest", "--target", proxy.URL, "--scenario", scenario, "--mode", "closed",
			"--concurrency", "8", "--users", strconv.Itoa(users), "--duration", "3s", "--ramp", "0s",
			"--jwt-secret", secret, "--quiet", "--json", out}, extra...)
		// Stale responses fail the command; the report says how many.
		output, runErr := exec.Command(bin, args...).CombinedOutput()
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("spark %v: %v, no report (%v)\n%s", args, runErr, err, output)
		}
		var rep struct {
			Checks *loadtestChecks `json:"checks"`
		}
		if err := json.Unmarshal(b, &rep); err != nil || rep.Checks == nil {
			t.Fatalf("report %s: %v", b, err)
		}
		return *rep.Checks
	}

	// The control first: an origin sends every later read of a profile
	// written through it to the primary while the replica lags, so once
	// each user has written through both origins nobody reads old.
	replica.PauseReplay(t)
	control := run("--no-read-after")
	replica.ResumeReplay(t)
	primary.WaitReplayed(t, replica)
	replica.PauseReplay(t)
	echo := run()
	replica.ResumeReplay(t)
	t.Logf("echoing: %d checked, %d stale; not echoing: %d checked, %d stale", echo.Checked, echo.Violations, control.Checked, control.Violations)
	if echo.Checked < 20 || echo.Violations != 0 {
		t.Fatalf("echoing Spark-Read-After: %d stale of %d checked; want 0 of at least 20: %v", echo.Violations, echo.Checked, echo.Examples)
	}
	if control.Violations == 0 {
		t.Fatalf("without the echo the checker saw no stale read in %d: the replica is not lagging, or the test sees nothing", control.Checked)
	}
}

// loadtestChecks is the checker's part of spark loadtest's JSON report.
type loadtestChecks struct {
	Checked    int64    `json:"checked"`
	Violations int64    `json:"violations"`
	Examples   []string `json:"examples"`
}

// Secrets of the edges edgesWithOwnOrigins starts.
const (
	readAfterSecret = "e2e-read-after-jwt-secret-0123456789abcdef"
	readAfterEvents = "e2e-read-after-events-token-0123456789abcdef"
)

// edgesWithOwnOrigins starts two `spark run` edges on the repository's
// Caddyfile, each in front of an origin of its own; both origins use
// primary and replica. It returns the edges' base URLs.
func edgesWithOwnOrigins(t *testing.T, primary, replica *testpg.Server) [2]string {
	t.Helper()
	bin := sparkBinary(t)
	var edges [2]string
	for i := range edges {
		addr, _ := startOrigin(t, origin.Config{Listen: "127.0.0.1:0", DatabaseURL: primary.URL(pgtest.ReplicatedDB),
			ReplicaURL: replica.URL(pgtest.ReplicatedDB), JWTSecret: readAfterSecret, PhotoDir: t.TempDir(),
			Events: origin.EventsConfig{Token: readAfterEvents}})
		ports := freePorts(t, 2)
		edges[i] = startEdgeProcess(t, bin, filepath.Join(moduleRoot(t), "Caddyfile"), ports[0], t.TempDir(),
			"SPARK_LISTEN=127.0.0.1:"+ports[0], "SPARK_ORIGIN="+addr, "SPARK_ADMIN=127.0.0.1:"+ports[1],
			"SPARK_JWT_SECRET="+readAfterSecret, "SPARK_EVENTS_TOKEN="+readAfterEvents)
	}
	return edges
}

// TestReadAfterOfSentFrames: a message sent over the WebSocket is stored
// by the first edge's origin; its sent frame carries read_after (the
// write's position, as a REST send's Spark-Read-After). The app echoes it
// on its next history read, through the second edge, whose origin never
// saw the write and whose replica is paused: the message is there.
// Without it the lagging replica answers, without the message.
func TestReadAfterOfSentFrames(t *testing.T) {
	primary, replica, boot := pgtest.Replicated(t)
	ann, conv := matchedPair(t, boot)
	primary.WaitReplayed(t, replica)
	edges := edgesWithOwnOrigins(t, primary, replica)
	tok, err := origin.IssueToken(readAfterSecret, ann, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + tok
	client := &http.Client{Timeout: 30 * time.Second}
	count := func(res *http.Response, body string) int {
		t.Helper()
		if res.StatusCode != 200 {
			t.Fatalf("history: %d %s", res.StatusCode, body)
		}
		var page struct {
			Messages []store.Message `json:"messages"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("history %q: %v", body, err)
		}
		return len(page.Messages)
	}

	ws := dialEdge(t, edges[0], tok)
	replica.PauseReplay(t)
	send := fmt.Sprintf(`{"type":"send","conversation_id":%d,"body":"hello","client_msg_id":"ra-1"}`, conv)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	var sent struct {
		ReadAfter string `json:"read_after"`
	}
	raw := readFrame(t, ws, "sent", nil)
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatalf("sent frame %s: %v", raw, err)
	}
	if _, err := contract.ParsePosition(sent.ReadAfter); err != nil {
		t.Fatalf("the sent frame %s carries no read_after position: %v", raw, err)
	}
	history := fmt.Sprintf("%s/api/conversations/%d/messages", edges[1], conv)
	if n := count(httpDo(t, client, "GET", history, "", "Authorization", auth, contract.ReadAfter, sent.ReadAfter)); n != 1 {
		t.Fatalf("through the second edge with the sent frame's read_after ann lists %d messages; want her 1", n)
	}
	// Another URL (not stored at the second edge), without the position:
	// the paused replica's history, without the message.
	if n := count(httpDo(t, client, "GET", history+"?limit=50", "", "Authorization", auth)); n != 0 {
		t.Fatalf("through the second edge without the position ann lists %d messages; want the lagging replica's 0", n)
	}
	replica.ResumeReplay(t)
}

// matchedPair makes ann and bea, matched, and returns ann and their
// conversation.
func matchedPair(t *testing.T, boot *postgis.Store) (ann, conv int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ann = mkUser(t, boot, "ann", 30, "woman", 1, 1, nil)
	bea := mkUser(t, boot, "bea", 30, "woman", 1, 1, nil)
	for _, p := range [][2]int64{{ann, bea}, {bea, ann}} {
		if _, err := boot.Swipe(ctx, p[0], p[1], store.Like); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := boot.ListMatches(ctx, ann)
	if err != nil || len(ms) != 1 {
		t.Fatalf("matches %v, %v", ms, err)
	}
	return ann, ms[0].ConversationID
}
