package postgis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

// matchedUsers makes n users and matches every pair, returning the users
// and the conversation of each pair (by the pair's indexes, lower first).
func matchedUsers(t *testing.T, s store.Store, n int) ([]int64, map[[2]int]int64) {
	t.Helper()
	ctx := context.Background()
	users := make([]int64, n)
	for i := range users {
		id, err := s.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: fmt.Sprint("u", i), Age: 30, Gender: "woman", Active: true}})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = id
	}
	convs := map[[2]int]int64{}
	for i := range users {
		for j := i + 1; j < n; j++ {
			if _, err := s.Swipe(ctx, users[i], users[j], store.Like); err != nil {
				t.Fatal(err)
			}
			r, err := s.Swipe(ctx, users[j], users[i], store.Like)
			if err != nil || r.Match == nil {
				t.Fatalf("match %d-%d: %+v %v", i, j, r, err)
			}
			convs[[2]int{i, j}] = r.Match.ConversationID
		}
	}
	return users, convs
}

// TestConcurrentBatchesNeverDeadlock sends batches spanning a triangle of
// conversations (a-b, b-c, c-a) from four goroutines, each batch listing
// them in a random order, while read marks and a block move: every batch
// transaction commits at its first attempt (no deadlock, no retry), and
// every user's log is gapless.
func TestConcurrentBatchesNeverDeadlock(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	users, convs := matchedUsers(t, s, 4)
	tri := [][3]int64{ // conversation, and its two users
		{convs[[2]int{0, 1}], users[0], users[1]},
		{convs[[2]int{1, 2}], users[1], users[2]},
		{convs[[2]int{0, 2}], users[2], users[0]},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 12))
			for round := 0; round < 25; round++ {
				var drafts []store.MessageDraft
				order := rng.Perm(3)
				for _, k := range order {
					c := tri[k]
					drafts = append(drafts, store.MessageDraft{SenderID: c[1+rng.IntN(2)], ConversationID: c[0], Body: "x",
						ClientMsgID: fmt.Sprint(g, "-", round, "-", k)})
				}
				res, err := s.SendBatchOnce(ctx, drafts)
				if err != nil {
					errs <- fmt.Errorf("batch %d/%d: %w", g, round, err)
					return
				}
				if c, m := tri[order[0]], res[0].Message; g%2 == 0 && res[0].Err == nil {
					if _, err := s.MarkRead(ctx, c[1]+c[2]-m.SenderID, m.ConversationID, m.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() { // a block ends the fourth user's matches meanwhile
		defer wg.Done()
		for _, u := range users[:3] {
			if _, err := s.Block(ctx, users[3], u); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range users {
		p, err := s.Events(ctx, u, 0, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range p.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("user %d: seq %d at %d", u, e.Seq, i)
			}
		}
		if p.LastSeq != int64(len(p.Events)) {
			t.Fatalf("user %d: last_seq %d, %d events", u, p.LastSeq, len(p.Events))
		}
	}
}

// TestBatchPoisonMessageFailsAlone: a message PostgreSQL refuses (a NUL
// byte in its text) fails the batch's transaction; each draft is then
// stored alone, so only that one fails and nothing of it was logged.
func TestBatchPoisonMessageFailsAlone(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	users, convs := matchedUsers(t, s, 2)
	conv := convs[[2]int{0, 1}]
	res := s.SendMessages(ctx, []store.MessageDraft{
		{SenderID: users[0], ConversationID: conv, Body: "before", ClientMsgID: "1"},
		{SenderID: users[1], ConversationID: conv, Body: "nul \x00 byte", ClientMsgID: "2"},
		{SenderID: users[1], ConversationID: conv, Body: "after", ClientMsgID: "3"},
	})
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil {
		t.Fatalf("results: %+v", res)
	}
	if res[0].Message.ConvSeq != 1 || res[2].Message.ConvSeq != 2 {
		t.Fatalf("conv_seq after the retry: %d, %d", res[0].Message.ConvSeq, res[2].Message.ConvSeq)
	}
	for _, u := range users {
		p, err := s.Events(ctx, u, 0, 100)
		if err != nil || p.LastSeq != 3 || len(p.Events) != 3 { // the match and two messages
			t.Fatalf("log of %d: %+v %v", u, p, err)
		}
	}
}

// TestBatchIDsFollowConvSeq: within one batch, message ids and conv_seq
// ascend together per conversation (history orders by id, receipts compare
// ids), whatever order the conversations come in.
func TestBatchIDsFollowConvSeq(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	users, convs := matchedUsers(t, s, 3)
	var drafts []store.MessageDraft
	for i := 0; i < 60; i++ {
		pair := [][2]int{{0, 1}, {1, 2}, {0, 2}}[(i*7)%3]
		drafts = append(drafts, store.MessageDraft{SenderID: users[pair[0]], ConversationID: convs[pair], Body: "x", ClientMsgID: fmt.Sprint(i)})
	}
	res := s.SendMessages(ctx, drafts)
	last := map[int64]store.Message{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		m := r.Message
		if p, ok := last[m.ConversationID]; ok && (m.ConvSeq != p.ConvSeq+1 || m.ID <= p.ID) {
			t.Fatalf("draft %d: %+v after %+v", i, m, p)
		}
		last[m.ConversationID] = m
	}
}

// TestMigrationNumbersExistingMessages runs migration 0007 on messages
// stored before it: each conversation's are numbered 1, 2 … by
// (created_at, id), its counter is set, and every user has a head.
func TestMigrationNumbersExistingMessages(t *testing.T) {
	ctx := context.Background()
	const schema = "test_postgis_mig7"
	admin := pgtest.Pool(t, schema) // migrated: drop 0007's work, then rerun it
	for _, q := range []string{
		`DROP TABLE event_heads, events, event_prunes`,
		`DROP FUNCTION event_heads_for_new_users() CASCADE`,
		`DROP INDEX messages_conv_seq`,
		`ALTER TABLE messages DROP COLUMN conv_seq`,
		`ALTER TABLE conversations DROP COLUMN last_conv_seq`,
		`TRUNCATE users, matches, conversations, messages RESTART IDENTITY CASCADE`,
		`INSERT INTO users (name, age, gender) SELECT 'u' || g, 30, 'woman' FROM generate_series(1, 4) g`,
		`INSERT INTO matches (user_a, user_b) VALUES (1, 2), (3, 4)`,
		`INSERT INTO conversations (match_id, user_a, user_b) VALUES (1, 1, 2), (2, 3, 4)`,
		// conversation 1: created_at out of id order, and a tie broken by id.
		`INSERT INTO messages (conversation_id, sender_id, body, client_msg_id, created_at) VALUES
		   (1, 1, 'third', 'a', '2026-01-01 10:00:03'), (1, 2, 'first', 'b', '2026-01-01 10:00:01'),
		   (2, 3, 'only', 'c', '2026-01-01 09:00:00'), (1, 1, 'second', 'd', '2026-01-01 10:00:02'),
		   (1, 2, 'fourth', 'e', '2026-01-01 10:00:03')`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := admin.Exec(ctx, `DELETE FROM schema_migrations WHERE version = 7`); err != nil {
		t.Fatal(err)
	}
	if applied, err := postgis.Migrate(ctx, admin); err != nil || len(applied) != 1 || applied[0] != 7 {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	rows, _ := admin.Query(ctx, `SELECT body FROM messages WHERE conversation_id = 1 ORDER BY conv_seq`)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(bodies, ",") != "first,second,third,fourth" {
		t.Fatalf("conversation 1 numbered %v (%v)", bodies, err)
	}
	var last1, last2, heads int64
	if err := admin.QueryRow(ctx, `SELECT (SELECT last_conv_seq FROM conversations WHERE id = 1),
		(SELECT last_conv_seq FROM conversations WHERE id = 2), (SELECT count(*) FROM event_heads)`).Scan(&last1, &last2, &heads); err != nil {
		t.Fatal(err)
	}
	if last1 != 4 || last2 != 1 || heads != 4 {
		t.Fatalf("counters %d, %d; heads %d", last1, last2, heads)
	}
	// The store goes on from there.
	s, err := postgis.Open(ctx, postgis.Config{URL: pgtest.SchemaURL(t, schema)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := store.SendOne(ctx, s, store.MessageDraft{SenderID: 2, ConversationID: 1, Body: "fifth", ClientMsgID: "f"})
	if r.Err != nil || r.Message.ConvSeq != 5 || len(r.Events) != 2 || r.Events[0].Seq != 1 || r.Events[1].Seq != 1 {
		t.Fatalf("send after the migration: %+v", r)
	}
}

// TestLockHeadsOfConversationsPlanUsesTheKey: the statement every message
// batch begins with finds the participants' event heads by their key, in
// the pool's generic plan, not by scanning every user's head.
func TestLockHeadsOfConversationsPlanUsesTheKey(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	p := s.Primary()
	// The load test's database: 2,000 users in 1,000 conversations.
	for _, q := range []string{
		`INSERT INTO users (name, age, gender) SELECT 'u' || g, 30, 'woman' FROM generate_series(1, 2000) g`,
		`WITH u AS (SELECT id, row_number() OVER (ORDER BY id) AS r FROM users)
		 INSERT INTO matches (user_a, user_b) SELECT a.id, b.id FROM u a JOIN u b ON b.r = a.r + 1 WHERE a.r % 2 = 1`,
		`INSERT INTO conversations (match_id, user_a, user_b) SELECT id, user_a, user_b FROM matches`,
		`ANALYZE users, event_heads, matches, conversations`,
	} {
		if _, err := p.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The pool's setting (force_generic_plan), set here too so the test
	// says what it checks; PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN).
	for _, q := range []string{`SET plan_cache_mode = force_generic_plan`,
		`PREPARE lock_heads(bigint[]) AS ` + postgis.LockHeadsOfConversationsSQL()} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE lock_heads('{1,2,3}')`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if strings.Contains(text, "Seq Scan on event_heads") || !strings.Contains(text, "event_heads_pkey") {
		t.Fatalf("the heads are not looked up by key:\n%s", text)
	}
}
