package postgis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// The routing the store claims, against a real streaming replica
// (pg_basebackup -R of a primary of the test's own). Replay on the replica
// is paused while another origin (a second store on the primary alone)
// writes, so every read says where it came from: the replica still shows
// the old data, the primary the new.
//
//   - Profile reads and message history come from the replica.
//   - Writes go to the primary (the replica refuses them) and fresh-data
//     reads (matches) come from the primary.
//   - Read your writes: after this origin's own write, its reads of what it
//     wrote come from the primary while the replica lags; no read returns
//     data older than the writer's own last write.
//   - Stopping the replica: reads fall back to the primary, counted; the
//     store stays ready. Once the replica is back, reads return to it.
func TestStreamingReplicaRouting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// other is another origin: it writes on the primary and this origin's
	// read-your-writes knows nothing of it. It makes the data, so this
	// origin has no recent writes of its own until it makes some.
	primary, replica, other := pgtest.Replicated(t)
	s := pgtest.OpenReplicated(t, primary, replica)

	mk := func(name string) int64 {
		t.Helper()
		id, err := other.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: name, Age: 30, Gender: "woman", Active: true}})
		if err != nil {
			t.Fatalf("create %s (a write, on the primary): %v", name, err)
		}
		return id
	}
	ann, bea, cat := mk("ann"), mk("bea"), mk("cat")
	swipe := func(st store.Store, a, b int64) store.SwipeResult {
		t.Helper()
		r, err := st.Swipe(ctx, a, b, store.Like)
		if err != nil {
			t.Fatalf("swipe %d→%d: %v", a, b, err)
		}
		return r
	}
	swipe(other, ann, bea)
	conv := swipe(other, bea, ann).Match.ConversationID
	send := func(st store.Store, from int64, body string) {
		t.Helper()
		r := st.SendMessages(ctx, []store.MessageDraft{{SenderID: from, ConversationID: conv, Body: body, ClientMsgID: body}})
		if r[0].Err != nil {
			t.Fatalf("send %q: %v", body, r[0].Err)
		}
	}
	send(other, ann, "m1")
	primary.WaitReplayed(t, replica)

	name := func(id int64) string { return profileName(t, s, id) }
	history := func() string { return historyText(ctx, t, s, bea, conv) }
	if n, h := name(bea), history(); n != "bea" || h != "m1 " {
		t.Fatalf("caught-up replica: bea %q, history %q", n, h)
	}

	replica.PauseReplay(t)
	// The other origin renames bea, adds a message and makes a match.
	if _, err := other.UpdateProfile(ctx, bea, store.ProfileUpdate{Name: "bea-2", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	send(other, bea, "m2")
	swipe(other, cat, ann)
	swipe(other, ann, cat)
	if n := name(bea); n != "bea" {
		t.Fatalf("bea reads %q while replay is paused: the profile read did not come from the replica", n)
	}
	if h := history(); h != "m1 " {
		t.Fatalf("history %q while replay is paused: it did not come from the replica", h)
	}
	matches, err := s.ListMatches(ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) != 2 {
		t.Fatalf("ann has %d matches, want 2: matches are fresh data, read from the primary", len(matches))
	}

	// This origin's own writes, read back while the replica lags.
	for v := 2; v <= 6; v++ {
		want := fmt.Sprintf("ann-%d", v)
		if _, err := s.UpdateProfile(ctx, ann, store.ProfileUpdate{Name: want, Age: 30, Gender: "woman", Active: true}, 0); err != nil {
			t.Fatalf("update ann (a write, on the primary): %v", err)
		}
		if n := name(ann); n != want {
			t.Fatalf("after writing %q ann reads %q: older than her own last write", want, n)
		}
	}
	send(s, ann, "m3")
	if h := history(); h != "m1 m2 m3 " {
		t.Fatalf("after sending m3 the history reads %q, want all three from the primary", h)
	}
	if n := name(cat); n != "cat" {
		t.Fatalf("cat, not written, reads %q", n)
	}

	replica.ResumeReplay(t)
	primary.WaitReplayed(t, replica)
	if n := name(bea); n != "bea-2" {
		t.Fatalf("caught-up replica: bea reads %q, want bea-2", n)
	}

	// The replica stopped: reads fall back to the primary.
	replica.PauseReplay(t)
	if _, err := other.UpdateProfile(ctx, bea, store.ProfileUpdate{Name: "bea-3", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	if n := name(bea); n != "bea-2" {
		t.Fatalf("paused replica: bea reads %q, want bea-2 from the replica", n)
	}
	replica.Stop()
	if n := name(bea); n != "bea-3" {
		t.Fatalf("replica stopped: bea reads %q, want bea-3 from the primary", n)
	}
	if h := history(); h != "m1 m2 m3 " {
		t.Fatalf("replica stopped: history %q", h)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with the replica stopped: %v (the primary serves its reads)", err)
	}
	if f := replicaFallbacks(s); f < 1 {
		t.Fatalf("replica fallbacks %d, want at least 1", f)
	}

	// Back: a started replica resumes replay (a pause does not survive a
	// restart); pause it again so a read from it is recognisable, and
	// reads return to it once its rest after the failure is over.
	replica.Start()
	replica.PauseReplay(t)
	if _, err := other.UpdateProfile(ctx, bea, store.ProfileUpdate{Name: "bea-4", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "profile reads back on the restarted replica", func() bool {
		return name(bea) != "bea-4"
	})
	replica.ResumeReplay(t)
}

func replicaFallbacks(s *postgis.Store) int64 {
	for _, p := range s.PoolStats() {
		if p.Name == "replica" {
			return p.Fallbacks
		}
	}
	return 0
}

// Read your writes by WAL position, against a real streaming replica whose
// replay is paused for longer than the old 10 s read-your-writes window:
//
//   - the writer reads their own profile and conversation fresh (from the
//     primary) for as long as the replica lags, past 10 s;
//   - another user's reads still use the replica;
//   - another origin, which did not see the write, reads the writer's data
//     fresh when the request carries the writer's position (the session a
//     client echoes as Spark-Read-After), and from the lagging replica when
//     it does not;
//   - once the replica has replayed the write, the writer's reads go back
//     to the replica.
func TestReadYourWritesPastTheOldWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Two origins on the same databases, and boot, a third, writing as
	// other users do.
	primary, replica, boot := pgtest.Replicated(t)
	writer, elsewhere := pgtest.OpenReplicated(t, primary, replica), pgtest.OpenReplicated(t, primary, replica)
	mk := func(name string) int64 {
		t.Helper()
		id, err := boot.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: name, Age: 30, Gender: "woman", Active: true}})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return id
	}
	ann, bea := mk("ann"), mk("bea")
	for _, p := range [][2]int64{{ann, bea}, {bea, ann}} {
		if _, err := boot.Swipe(ctx, p[0], p[1], store.Like); err != nil {
			t.Fatal(err)
		}
	}
	matches, err := boot.ListMatches(ctx, ann)
	if err != nil || len(matches) != 1 {
		t.Fatalf("matches %v, %v", matches, err)
	}
	conv := matches[0].ConversationID
	if r := boot.SendMessages(ctx, []store.MessageDraft{{SenderID: bea, ConversationID: conv, Body: "m1", ClientMsgID: "m1"}}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	primary.WaitReplayed(t, replica)
	replica.PauseReplay(t)

	nameOn := func(ctx context.Context, s *postgis.Store, id int64) string {
		t.Helper()
		p, err := s.GetProfile(ctx, id)
		if err != nil {
			t.Fatalf("profile %d: %v", id, err)
		}
		return p.Name
	}
	historyOn := func(ctx context.Context, s *postgis.Store) string { return historyText(ctx, t, s, ann, conv) }

	// Ann writes through one origin, in a request with a session (what the
	// HTTP layer gives every request).
	sess := store.NewSession(0)
	wctx := store.WithSession(ctx, sess)
	if _, err := writer.UpdateProfile(wctx, ann, store.ProfileUpdate{Name: "ann-2", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	if r := writer.SendMessages(wctx, []store.MessageDraft{{SenderID: ann, ConversationID: conv, Body: "m2", ClientMsgID: "m2"}}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	written := sess.After()
	if written == 0 {
		t.Fatal("the writes did not advance the request's session")
	}
	// Other users' writes meanwhile, which nobody here must see.
	if _, err := boot.UpdateProfile(ctx, bea, store.ProfileUpdate{Name: "bea-2", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(12 * time.Second) // past the old 10 s window
	checks := 0
	for first := true; first || time.Now().Before(deadline); first = false {
		checks++
		if n := nameOn(ctx, writer, ann); n != "ann-2" {
			t.Fatalf("%d checks in, ann reads %q through the origin she wrote to: older than her own write", checks, n)
		}
		if h := historyOn(ctx, writer); h != "m1 m2 " {
			t.Fatalf("%d checks in, ann's history reads %q through the origin she wrote to", checks, h)
		}
		// Another origin, her request carrying her position.
		if n := nameOn(store.WithSession(ctx, store.NewSession(written)), elsewhere, ann); n != "ann-2" {
			t.Fatalf("%d checks in, ann reads %q through another origin with her position %s", checks, n, written)
		}
		if h := historyOn(store.WithSession(ctx, store.NewSession(written)), elsewhere); h != "m1 m2 " {
			t.Fatalf("%d checks in, ann's history reads %q through another origin with her position", checks, h)
		}
		// Bea's profile: nobody here wrote it, so the replica answers.
		if n := nameOn(ctx, writer, bea); n != "bea" {
			t.Fatalf("%d checks in, bea reads %q: the read did not use the replica", checks, n)
		}
		time.Sleep(time.Second)
	}
	// Without her position another origin reads the lagging replica:
	// that is what the position is for (and the replica does lag).
	if n := nameOn(ctx, elsewhere, ann); n != "ann" {
		t.Fatalf("another origin without ann's position reads %q; want the replica's old %q", n, "ann")
	}
	behind := replicaBehind(writer)
	if behind < int64(2*checks) {
		t.Fatalf("reads sent to the primary for the lag: %d, want at least %d", behind, 2*checks)
	}

	// Caught up: the writer's reads return to the replica. Pause again and
	// change ann elsewhere, so a read from the replica is recognisable.
	replica.ResumeReplay(t)
	primary.WaitReplayed(t, replica)
	replica.PauseReplay(t)
	if _, err := boot.UpdateProfile(ctx, ann, store.ProfileUpdate{Name: "ann-3", Age: 30, Gender: "woman", Active: true}, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "ann's reads back on the caught-up replica", func() bool {
		return nameOn(ctx, writer, ann) == "ann-2" && historyOn(ctx, writer) == "m1 m2 " &&
			nameOn(store.WithSession(ctx, store.NewSession(written)), elsewhere, ann) == "ann-2"
	})
	if b := replicaBehind(writer); b != behind {
		// Eventually may have polled before the poller saw the catch-up;
		// from now on no read of hers is held back.
		behind = b
	}
	for range 10 {
		if n := nameOn(ctx, writer, ann); n != "ann-2" {
			t.Fatalf("caught-up replica: ann reads %q, want the replica's ann-2", n)
		}
	}
	if b := replicaBehind(writer); b != behind {
		t.Fatalf("reads held back from the caught-up replica: %d more", b-behind)
	}
	replica.ResumeReplay(t)
}

func replicaBehind(s *postgis.Store) int64 {
	for _, p := range s.PoolStats() {
		if p.Name == "replica" {
			return p.Behind
		}
	}
	return 0
}

// historyText is conversation conv's message bodies as reader lists them,
// oldest first, each followed by a space (which database answered, in the
// replica tests).
func historyText(ctx context.Context, t *testing.T, s *postgis.Store, reader, conv int64) string {
	t.Helper()
	ms, err := s.ListMessages(ctx, reader, conv, 0, 50)
	if err != nil {
		t.Fatalf("history of %d for %d: %v", conv, reader, err)
	}
	out := ""
	for i := len(ms) - 1; i >= 0; i-- {
		out += ms[i].Body + " "
	}
	return out
}

// BenchmarkReplicaRouting: what read your writes by WAL position costs. A
// write with a replica pays one more query (the primary's position after
// the commit); a read pays no query for the routing, whichever pool
// answers it. One primary and one streaming replica of the benchmark's own.
func BenchmarkReplicaRouting(b *testing.B) {
	ctx := context.Background()
	primary, replica, alone := pgtest.Replicated(b)
	withReplica := pgtest.OpenReplicated(b, primary, replica)
	id, err := alone.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: "ann", Age: 30, Gender: "woman", Active: true}})
	if err != nil {
		b.Fatal(err)
	}
	primary.WaitReplayed(b, replica)
	for _, c := range []struct {
		name string
		s    *postgis.Store
	}{{"primary-only", alone}, {"with-replica", withReplica}} {
		b.Run("write/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if _, err := c.s.UpdateProfile(ctx, id, store.ProfileUpdate{Name: fmt.Sprintf("ann-%d", i), Age: 30, Gender: "woman", Active: true}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	primary.WaitReplayed(b, replica)
	time.Sleep(200 * time.Millisecond) // the poller has seen the replica caught up
	for _, c := range []struct {
		name string
		s    *postgis.Store
	}{{"primary-only", alone}, {"with-replica", withReplica}} {
		b.Run("read/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := c.s.GetProfile(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
