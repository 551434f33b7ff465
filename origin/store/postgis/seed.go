package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// SeedSwipe is one swipe Seed loads.
type SeedSwipe struct {
	Swiper, Target int64
	Direction      store.Direction
}

// SeedConversation is a conversation Seed made for a new mutual like; the
// source writes its messages.
type SeedConversation struct{ ID, UserA, UserB int64 }

// SeedCounts is what Seed has loaded so far.
type SeedCounts struct{ Users, Swipes, Matches, Messages int64 }

// SeedSource generates the rows Seed bulk-loads. Seed calls Users, Swipes
// and Messages once each, in that order, and pulls every row of one before
// calling the next; a pull returning false ends the rows.
type SeedSource interface {
	// Users returns the new users: the n-th pulled (from 0) gets id
	// firstID+n. Their points are stored as the store stores every point:
	// the centre of their grid cell.
	Users(firstID int64) func() (store.NewUser, bool)
	// Swipes returns swipes by the new users, at most one per (swiper,
	// target): the primary key is rebuilt after the load, not checked row
	// by row.
	Swipes() func() (SeedSwipe, bool)
	// Messages returns messages of the conversations Seed made.
	Messages(convs []SeedConversation) func() (store.Message, bool)
	// Loaded is told what has been loaded after each step: "users",
	// "swipes", "matches", "messages".
	Loaded(step string, so SeedCounts)
}

// Seed bulk-loads what src generates, on one connection without the
// pool's statement timeout (a bulk load outlasts it): users and their
// preferences with COPY through a staging table, swipes with COPY and their
// primary key rebuilt after (much faster than maintaining the btree row by
// row), a match and a conversation for every new mutual like, messages with
// COPY; then ANALYZE. New users get ids after the current maximum, so
// seeding twice adds a second population.
func (s *Store) Seed(ctx context.Context, src SeedSource) (SeedCounts, error) {
	conn, err := s.primary.Acquire(ctx)
	if err != nil {
		return SeedCounts{}, fmt.Errorf("postgis: seed: acquire: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()
	if _, err := c.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return SeedCounts{}, fmt.Errorf("postgis: seed: %w", err)
	}
	defer func() { _, _ = c.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`) }()
	var n SeedCounts
	var base, convBase int64
	if err := c.QueryRow(ctx, `SELECT (SELECT COALESCE(max(id), 0) FROM users), (SELECT COALESCE(max(id), 0) FROM conversations)`).
		Scan(&base, &convBase); err != nil {
		return n, fmt.Errorf("postgis: seed: %w", err)
	}
	if n.Users, err = seedUsers(ctx, c, src.Users(base+1), base); err != nil {
		return n, err
	}
	src.Loaded("users", n)
	if n.Swipes, err = seedSwipes(ctx, c, src.Swipes()); err != nil {
		return n, err
	}
	src.Loaded("swipes", n)
	if n.Matches, err = seedMatches(ctx, c, base); err != nil {
		return n, err
	}
	src.Loaded("matches", n)
	convs, err := seedConversations(ctx, c, convBase)
	if err != nil {
		return n, err
	}
	if n.Messages, err = seedMessages(ctx, c, src.Messages(convs), convBase); err != nil {
		return n, err
	}
	src.Loaded("messages", n)
	if _, err := c.Exec(ctx, `ANALYZE users; ANALYZE swipes; ANALYZE matches; ANALYZE conversations; ANALYZE messages`); err != nil {
		return n, fmt.Errorf("postgis: seed: analyze: %w", err)
	}
	return n, nil
}

// seedUsers loads users and their preferences through a staging table
// (ids from base+1), in cell order, and moves the id sequence past them.
func seedUsers(ctx context.Context, c *pgx.Conn, next func() (store.NewUser, bool), base int64) (int64, error) {
	if _, err := c.Exec(ctx, `CREATE TEMP TABLE seed_users (
		id bigint, name text, age smallint, gender text, bio text, photos text[], is_active boolean,
		lat float8, lng float8, cell text, min_age smallint, max_age smallint, max_distance_km integer, genders text[])`); err != nil {
		return 0, fmt.Errorf("postgis: seed: staging table: %w", err)
	}
	defer func() { _, _ = c.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS seed_users`) }()
	id := base
	cols := []string{"id", "name", "age", "gender", "bio", "photos", "is_active", "lat", "lng", "cell",
		"min_age", "max_age", "max_distance_km", "genders"}
	copied, err := c.CopyFrom(ctx, pgx.Identifier{"seed_users"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		u, ok := next()
		if !ok {
			return nil, nil
		}
		id++
		row := []any{id, u.Profile.Name, u.Profile.Age, u.Profile.Gender, u.Profile.Bio, u.Profile.Photos, u.Profile.Active,
			nil, nil, nil, nil, nil, nil, nil}
		if u.Location != nil {
			lat, lng := geocache.SnapToGrid(u.Location.Lat, u.Location.Lng)
			row[7], row[8], row[9] = lat, lng, geocache.Cell(lat, lng, store.CellPrecision)
		}
		if p := u.Preferences; p != nil {
			row[10], row[11], row[12], row[13] = p.MinAge, p.MaxAge, p.MaxDistanceKm, p.Genders
		}
		return row, nil
	}))
	if err != nil {
		return 0, fmt.Errorf("postgis: seed: copy users: %w", err)
	}
	if _, err := c.Exec(ctx, `
		INSERT INTO users (id, name, age, gender, bio, photos, is_active, geog, cell, location_updated_at)
		SELECT id, name, age, gender, bio, photos, is_active,
		       ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography, cell, CASE WHEN lat IS NOT NULL THEN now() END
		FROM seed_users ORDER BY cell`); err != nil {
		return 0, fmt.Errorf("postgis: seed: insert users: %w", err)
	}
	if _, err := c.Exec(ctx, `
		INSERT INTO preferences (user_id, min_age, max_age, max_distance_km, genders)
		SELECT id, min_age, max_age, max_distance_km, genders FROM seed_users WHERE min_age IS NOT NULL`); err != nil {
		return 0, fmt.Errorf("postgis: seed: insert preferences: %w", err)
	}
	if _, err := c.Exec(ctx, `SELECT setval('users_id_seq', (SELECT max(id) FROM users))`); err != nil {
		return 0, fmt.Errorf("postgis: seed: users sequence: %w", err)
	}
	return copied, nil
}

// seedSwipes loads swipes with the primary key dropped and rebuilt after,
// in one transaction.
func seedSwipes(ctx context.Context, c *pgx.Conn, next func() (SeedSwipe, bool)) (int64, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgis: seed: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `ALTER TABLE swipes DROP CONSTRAINT swipes_pkey`); err != nil {
		return 0, fmt.Errorf("postgis: seed: drop swipes key: %w", err)
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"swipes"}, []string{"swiper_id", "target_id", "direction"},
		pgx.CopyFromFunc(func() ([]any, error) {
			sw, ok := next()
			if !ok {
				return nil, nil
			}
			return []any{sw.Swiper, sw.Target, dirToDB(sw.Direction)}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("postgis: seed: copy swipes: %w", err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE swipes ADD PRIMARY KEY (swiper_id, target_id)`); err != nil {
		return 0, fmt.Errorf("postgis: seed: rebuild swipes key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgis: seed: commit swipes: %w", err)
	}
	return n, nil
}

// seedMatches makes a match for every mutual like by users after base that
// has none, and a conversation for every match without one.
func seedMatches(ctx context.Context, c *pgx.Conn, base int64) (int64, error) {
	tag, err := c.Exec(ctx, `
		INSERT INTO matches (user_a, user_b)
		SELECT s1.swiper_id, s1.target_id FROM swipes s1
		JOIN swipes s2 ON s2.swiper_id = s1.target_id AND s2.target_id = s1.swiper_id
		WHERE s1.swiper_id > $1 AND s1.swiper_id < s1.target_id AND s1.direction > 0 AND s2.direction > 0
		ORDER BY 1, 2
		ON CONFLICT DO NOTHING`, base)
	if err != nil {
		return 0, fmt.Errorf("postgis: seed: matches: %w", err)
	}
	if _, err := c.Exec(ctx, `
		INSERT INTO conversations (match_id, user_a, user_b, created_at)
		SELECT m.id, m.user_a, m.user_b, m.created_at FROM matches m
		WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.match_id = m.id)
		ORDER BY m.id`); err != nil {
		return 0, fmt.Errorf("postgis: seed: conversations: %w", err)
	}
	return tag.RowsAffected(), nil
}

// seedMessages loads messages with COPY, numbered per conversation in the
// order the source gives them (its times ascend per conversation), then sets
// the conversations' counters. Seeded history has no events: the event log
// starts with the first write through the store.
func seedMessages(ctx context.Context, c *pgx.Conn, next func() (store.Message, bool), convBase int64) (int64, error) {
	convSeq := make(map[int64]int64)
	n, err := c.CopyFrom(ctx, pgx.Identifier{"messages"},
		[]string{"conversation_id", "conv_seq", "sender_id", "body", "client_msg_id", "created_at"}, pgx.CopyFromFunc(func() ([]any, error) {
			m, ok := next()
			if !ok {
				return nil, nil
			}
			convSeq[m.ConversationID]++
			return []any{m.ConversationID, convSeq[m.ConversationID], m.SenderID, m.Body, m.ClientMsgID, m.CreatedAt}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("postgis: seed: copy messages: %w", err)
	}
	if _, err := c.Exec(ctx, `
		UPDATE conversations c SET last_conv_seq = n.last
		FROM (SELECT conversation_id, max(conv_seq) AS last FROM messages WHERE conversation_id > $1 GROUP BY conversation_id) n
		WHERE c.id = n.conversation_id`, convBase); err != nil {
		return 0, fmt.Errorf("postgis: seed: conversation counters: %w", err)
	}
	return n, nil
}

// seedConversations lists the conversations after convBase, by id.
func seedConversations(ctx context.Context, c *pgx.Conn, convBase int64) ([]SeedConversation, error) {
	rows, err := c.Query(ctx, `SELECT id, user_a, user_b FROM conversations WHERE id > $1 ORDER BY id`, convBase)
	if err != nil {
		return nil, fmt.Errorf("postgis: seed: list conversations: %w", err)
	}
	convs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SeedConversation, error) {
		var cv SeedConversation
		err := r.Scan(&cv.ID, &cv.UserA, &cv.UserB)
		return cv, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgis: seed: list conversations: %w", err)
	}
	return convs, nil
}
