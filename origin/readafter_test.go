package origin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testpg"
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
	if _, err := store.ParsePosition(pos); err != nil {
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
	// A position from the future (another database, a forged one) only
	// sends the reads to the primary.
	if n := name(second.do("GET", path, tok, "", contract.ReadAfter, "FFFFFFFF/FFFFFFFF")); n != "ann-2" {
		t.Fatalf("with a position the replica never reached ann reads %q", n)
	}

	// A message goes through the batcher (a transaction of its own
	// goroutine): its position still reaches the sender's response.
	r = first.do("POST", history, tok, `{"body":"hi bea","client_msg_id":"m1"}`)
	expect(t, r, 201, "send a message")
	pos2, err := store.ParsePosition(r.hdr.Get(contract.ReadAfter))
	if p1, _ := store.ParsePosition(pos); err != nil || pos2 <= p1 {
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
	if n := count(second.do("GET", history, tok, "", contract.ReadAfter, pos2.String())); n != 1 {
		t.Fatalf("another origin, given ann's position, lists %d messages; want her 1", n)
	}
	if n := count(second.do("GET", history, tok, "")); n != 0 {
		t.Fatalf("another origin without her position lists %d messages; want the lagging replica's 0", n)
	}

	for _, bad := range []string{"16", "x/1", "1/2/3", "123456789/0"} {
		expect(t, second.do("GET", path, tok, "", contract.ReadAfter, bad), 400, fmt.Sprintf("%s %q", contract.ReadAfter, bad))
	}
	replica.ResumeReplay(t)
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
	if _, err := store.ParsePosition(pos); err != nil {
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
	if _, err := store.ParsePosition(sent.ReadAfter); err != nil {
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
