package origin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

func seedFingerprint(t *testing.T, db *pgxpool.Pool) (users, swipes, matches, convs, msgs int64, fp string) {
	t.Helper()
	ctx := context.Background()
	err := db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM users), (SELECT count(*) FROM swipes), (SELECT count(*) FROM matches),
		(SELECT count(*) FROM conversations), (SELECT count(*) FROM messages),
		md5((SELECT string_agg(id || ':' || name || ':' || age || gender || is_active || ST_AsText(geog) || cell, ',' ORDER BY id) FROM users) ||
		    (SELECT string_agg(swiper_id || ':' || target_id || ':' || direction, ',' ORDER BY swiper_id, target_id) FROM swipes) ||
		    (SELECT string_agg(conversation_id || ':' || sender_id || ':' || body || ':' || created_at, ',' ORDER BY id) FROM messages))`).
		Scan(&users, &swipes, &matches, &convs, &msgs, &fp)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestSeedDeterministicAndConsistent seeds a small population twice and
// checks it is identical, realistic in shape, and consistent (every mutual
// like is a match with a conversation; suggestions work on it).
func TestSeedDeterministicAndConsistent(t *testing.T) {
	const schema = "test_origin_seed"
	ctx := context.Background()
	opts := origin.SeedOptions{Users: 3000, Seed: 7, SwipesPerUser: 20, MatchedShare: 0.1, MessagesPerMatch: 6}
	var first string
	for round := 0; round < 2; round++ {
		s := pgtest.Open(t, schema)
		rep, err := origin.SeedDatabase(ctx, pgtest.SchemaURL(t, schema), postgis.PoolConfig{}, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		db := pgtest.Pool(t, schema)
		users, swipes, matches, convs, msgs, fp := seedFingerprint(t, db)
		if users != 3000 || rep.Users != 3000 || swipes != rep.Swipes || matches != rep.Matches || msgs != rep.Messages {
			t.Fatalf("report %+v vs counts users %d swipes %d matches %d msgs %d", rep, users, swipes, matches, msgs)
		}
		if swipes < 3000*10 || matches < 100 || convs != matches || msgs == 0 {
			t.Fatalf("unrealistic shape: %d swipes, %d matches, %d conversations, %d messages", swipes, matches, convs, msgs)
		}
		var inactive, unmatchedMutual, heavy int64
		if err := db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM users WHERE NOT is_active),
			(SELECT count(*) FROM swipes a JOIN swipes b ON b.swiper_id = a.target_id AND b.target_id = a.swiper_id
			  WHERE a.swiper_id < a.target_id AND a.direction > 0 AND b.direction > 0
			    AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.user_a = a.swiper_id AND m.user_b = a.target_id)),
			(SELECT count(*) FROM (SELECT swiper_id FROM swipes GROUP BY 1 HAVING count(*) >= 185) h)`).
			Scan(&inactive, &unmatchedMutual, &heavy); err != nil {
			t.Fatal(err)
		}
		if inactive < 300 || inactive > 600 || unmatchedMutual != 0 || heavy == 0 {
			t.Fatalf("inactive %d (want ~15%%), mutual likes without match %d, heavy swipers %d", inactive, unmatchedMutual, heavy)
		}
		if _, err := s.Suggestions(ctx, 1, 20); err != nil {
			t.Fatalf("suggestions on seeded data: %v", err)
		}
		// Seeded points are stored as the store stores them: cell centres.
		rows, err := db.Query(ctx, `SELECT ST_Y(geog::geometry), ST_X(geog::geometry), cell FROM users`)
		if err != nil {
			t.Fatal(err)
		}
		var lat, lng float64
		var cell string
		if _, err := pgx.ForEachRow(rows, []any{&lat, &lng, &cell}, func() error {
			if slat, slng := geocache.SnapToGrid(lat, lng); slat != lat || slng != lng || cell != geocache.Cell(lat, lng, store.CellPrecision) {
				return fmt.Errorf("seeded user at (%v, %v) in %s: not a grid cell centre (%v, %v)", lat, lng, cell, slat, slng)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			first = fp
		} else if fp != first {
			t.Fatal("two seeds with the same options differ")
		}
	}
}
