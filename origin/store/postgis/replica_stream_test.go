package postgis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testpg"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
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
	primary := testpg.StartPrimary(t, nil)
	primary.CreateDatabase(t, "spark")
	boot, err := postgis.Open(ctx, postgis.Config{URL: primary.URL("spark")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boot.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	boot.Close()
	replica := primary.StartReplica(t)

	s, err := postgis.Open(ctx, postgis.Config{URL: primary.URL("spark"), ReplicaURL: replica.URL("spark")})
	if err != nil {
		t.Fatalf("open with the replica: %v", err)
	}
	defer s.Close()
	// Another origin: it writes on the primary and this origin's
	// read-your-writes knows nothing of it. It makes the data, so this
	// origin has no recent writes of its own until it makes some.
	other, err := postgis.Open(ctx, postgis.Config{URL: primary.URL("spark")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

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
	history := func() string {
		t.Helper()
		ms, err := s.ListMessages(ctx, bea, conv, 0, 50)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		out := ""
		for i := len(ms) - 1; i >= 0; i-- {
			out += ms[i].Body + " "
		}
		return out
	}
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
