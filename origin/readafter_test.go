package origin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testpg"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/postgis"
)

// Spark-Read-After over HTTP, with two origins on one primary and one real
// streaming replica whose replay is paused: ann's profile update through
// the first origin answers with her position; the second origin, which
// knows nothing of the write, serves her profile fresh (from the primary)
// when her request carries the position and the replica's old copy when it
// does not. Reads do not carry a position back; a malformed one is a 400.
func TestReadAfterAcrossOrigins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary := testpg.StartPrimary(t, nil)
	primary.CreateDatabase(t, "spark")
	boot, err := postgis.Open(ctx, postgis.Config{URL: primary.URL("spark")})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	if _, err := boot.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ann := mkUser(t, boot, "ann", 30, "woman", 1, 1, nil)
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
	history := fmt.Sprintf("/api/conversations/%d/messages", ms[0].ConversationID)
	replica := primary.StartReplica(t)
	primary.WaitReplayed(t, replica)
	origins := make([]*api, 2)
	for i := range origins {
		s, err := postgis.Open(ctx, postgis.Config{URL: primary.URL("spark"), ReplicaURL: replica.URL("spark")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		origins[i] = newAPI(t, s)
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
