package origin

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
)

// SeedOptions shape `spark origin seed`.
type SeedOptions struct {
	Users            int
	Seed             uint64
	SwipesPerUser    int     // average; 1% of users are heavy swipers (185..1029)
	MatchedShare     float64 // share of users paired with a same-city partner by mutual likes
	MessagesPerMatch int     // average messages per conversation
}

// DefaultSeedOptions are the flag defaults.
func DefaultSeedOptions() SeedOptions {
	return SeedOptions{Users: 10000, Seed: 1, SwipesPerUser: 20, MatchedShare: 0.1, MessagesPerMatch: 12}
}

// SeedReport summarises a seed run.
type SeedReport struct {
	Users, Swipes, Matches, Messages int64
	Elapsed                          time.Duration
}

// String formats the report for the command line.
func (r SeedReport) String() string {
	return fmt.Sprintf("seeded %d users, %d swipes, %d matches, %d messages in %s",
		r.Users, r.Swipes, r.Matches, r.Messages, r.Elapsed.Round(time.Millisecond))
}

// MigrateDatabase opens url and applies the embedded migrations.
func MigrateDatabase(ctx context.Context, url string, pc postgis.PoolConfig) ([]int, error) {
	st, err := postgis.Open(ctx, postgis.Config{URL: url, Pool: pc})
	if err != nil {
		return nil, fmt.Errorf("origin migrate: %w", err)
	}
	defer st.Close()
	applied, err := postgis.Migrate(ctx, st.Primary())
	if err != nil {
		return applied, fmt.Errorf("origin migrate: %w", err)
	}
	return applied, nil
}

// SeedDatabase migrates url and bulk-loads deterministic data with COPY:
// users clustered around SeedCities() (15% inactive), swipes concentrated on users
// of the same city (heavy-tailed per user), mutual likes turned into matches
// with conversations, and messages. New users get ids after the current
// maximum, so seeding twice adds a second population.
func SeedDatabase(ctx context.Context, url string, pc postgis.PoolConfig, o SeedOptions, log *slog.Logger) (SeedReport, error) {
	if log == nil {
		log = slog.Default()
	}
	if o.Users <= 0 {
		return SeedReport{}, fmt.Errorf("origin seed: --users must be positive, got %d", o.Users)
	}
	start := time.Now()
	st, err := postgis.Open(ctx, postgis.Config{URL: url, Pool: pc})
	if err != nil {
		return SeedReport{}, fmt.Errorf("origin seed: %w", err)
	}
	defer st.Close()
	if _, err := postgis.Migrate(ctx, st.Primary()); err != nil {
		return SeedReport{}, fmt.Errorf("origin seed: %w", err)
	}
	conn, err := st.Primary().Acquire(ctx)
	if err != nil {
		return SeedReport{}, fmt.Errorf("origin seed: acquire: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()
	// Bulk loads may run longer than the API's statement timeout.
	if _, err := c.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return SeedReport{}, fmt.Errorf("origin seed: %w", err)
	}
	var rep SeedReport
	var base, convBase int64
	if err := c.QueryRow(ctx, `SELECT COALESCE(max(id), 0) FROM users`).Scan(&base); err != nil {
		return rep, fmt.Errorf("origin seed: %w", err)
	}
	if err := c.QueryRow(ctx, `SELECT COALESCE(max(id), 0) FROM conversations`).Scan(&convBase); err != nil {
		return rep, fmt.Errorf("origin seed: %w", err)
	}

	g := NewGenerator(o.Seed)
	n := o.Users
	city := make([]uint8, n)
	byCity := make([][]int32, len(cities)) // indexes into 0..n-1

	// 1. users + preferences through a staging table.
	if _, err := c.Exec(ctx, `CREATE TEMP TABLE seed_users (
		id bigint, name text, age smallint, gender text, bio text, photos text[], is_active boolean,
		lat float8, lng float8, cell text, min_age smallint, max_age smallint, max_distance_km integer, genders text[])`); err != nil {
		return rep, fmt.Errorf("origin seed: staging table: %w", err)
	}
	defer func() { _, _ = c.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS seed_users`) }()
	i := 0
	cols := []string{"id", "name", "age", "gender", "bio", "photos", "is_active", "lat", "lng", "cell",
		"min_age", "max_age", "max_distance_km", "genders"}
	copied, err := c.CopyFrom(ctx, pgx.Identifier{"seed_users"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		u, ci := g.User(int(base) + i + 1)
		city[i] = uint8(ci)
		byCity[ci] = append(byCity[ci], int32(i))
		p := u.Preferences
		// Stored as the store would: the centre of the point's grid cell.
		lat, lng := geocache.SnapToGrid(u.Location.Lat, u.Location.Lng)
		row := []any{base + int64(i) + 1, u.Profile.Name, u.Profile.Age, u.Profile.Gender, u.Profile.Bio, u.Profile.Photos,
			u.Profile.Active, lat, lng, geocache.Cell(lat, lng, store.CellPrecision), p.MinAge, p.MaxAge, p.MaxDistanceKm, p.Genders}
		i++
		return row, nil
	}))
	if err != nil {
		return rep, fmt.Errorf("origin seed: copy users: %w", err)
	}
	if _, err := c.Exec(ctx, `
		INSERT INTO users (id, name, age, gender, bio, photos, is_active, geog, cell, location_updated_at)
		SELECT id, name, age, gender, bio, photos, is_active,
		       ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography, cell, now()
		FROM seed_users ORDER BY cell`); err != nil {
		return rep, fmt.Errorf("origin seed: insert users: %w", err)
	}
	if _, err := c.Exec(ctx, `
		INSERT INTO preferences (user_id, min_age, max_age, max_distance_km, genders)
		SELECT id, min_age, max_age, max_distance_km, genders FROM seed_users`); err != nil {
		return rep, fmt.Errorf("origin seed: insert preferences: %w", err)
	}
	if _, err := c.Exec(ctx, `SELECT setval('users_id_seq', (SELECT max(id) FROM users))`); err != nil {
		return rep, fmt.Errorf("origin seed: users sequence: %w", err)
	}
	rep.Users = copied
	log.Info("seed: users loaded", "users", copied, "elapsed", time.Since(start).Round(time.Millisecond))

	// 2. swipes: partners first (mutual likes), then same-city targets.
	partner := make([]int32, n)
	for k := range partner {
		partner[k] = -1
	}
	for _, ids := range byCity {
		perm := g.Rand().Perm(len(ids))
		for k := 0; k+1 < len(perm); k += 2 {
			if g.Rand().Float64() < o.MatchedShare {
				a, b := ids[perm[k]], ids[perm[k+1]]
				partner[a], partner[b] = b, a
			}
		}
	}
	heavyMean := float64(max(1, o.SwipesPerUser-6))
	swiper := 0
	var pending [][]any
	seen := map[int32]struct{}{}
	dir := func(r *rand.Rand) int16 {
		x := r.IntN(100)
		switch {
		case x < 5:
			return 2
		case x < 60:
			return 1
		}
		return -1
	}
	nextRow := func() ([]any, error) {
		for len(pending) == 0 {
			if swiper >= n {
				return nil, nil
			}
			me := int32(swiper)
			swiper++
			r := g.Rand()
			clear(seen)
			if p := partner[me]; p >= 0 {
				seen[p] = struct{}{}
				pending = append(pending, []any{base + int64(me) + 1, base + int64(p) + 1, int16(1)})
			}
			var k int
			if r.IntN(100) == 0 {
				k = 185 + r.IntN(845)
			} else {
				k = int(r.ExpFloat64() * heavyMean)
			}
			pool := byCity[city[me]]
			k = min(k, len(pool)-1)
			for tries := 0; len(seen) < k && tries < 4*k+8; tries++ {
				t := pool[r.IntN(len(pool))]
				if t == me {
					continue
				}
				if _, dup := seen[t]; dup {
					continue
				}
				seen[t] = struct{}{}
				d := dir(r)
				if partner[t] == me {
					d = 1
				}
				pending = append(pending, []any{base + int64(me) + 1, base + int64(t) + 1, d})
			}
		}
		row := pending[0]
		pending = pending[1:]
		return row, nil
	}
	// COPY without the primary key, then rebuild it: much faster than
	// maintaining the btree row by row. Generated pairs are unique per swiper
	// and every swiper is new, so the key cannot be violated.
	tx, err := c.Begin(ctx)
	if err != nil {
		return rep, fmt.Errorf("origin seed: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `ALTER TABLE swipes DROP CONSTRAINT swipes_pkey`); err != nil {
		return rep, fmt.Errorf("origin seed: drop swipes key: %w", err)
	}
	rep.Swipes, err = tx.CopyFrom(ctx, pgx.Identifier{"swipes"}, []string{"swiper_id", "target_id", "direction"}, pgx.CopyFromFunc(nextRow))
	if err != nil {
		return rep, fmt.Errorf("origin seed: copy swipes: %w", err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE swipes ADD PRIMARY KEY (swiper_id, target_id)`); err != nil {
		return rep, fmt.Errorf("origin seed: rebuild swipes key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("origin seed: commit swipes: %w", err)
	}
	log.Info("seed: swipes loaded", "swipes", rep.Swipes, "elapsed", time.Since(start).Round(time.Millisecond))

	// 3. matches and conversations for every new mutual like.
	tag, err := c.Exec(ctx, `
		INSERT INTO matches (user_a, user_b)
		SELECT s1.swiper_id, s1.target_id FROM swipes s1
		JOIN swipes s2 ON s2.swiper_id = s1.target_id AND s2.target_id = s1.swiper_id
		WHERE s1.swiper_id > $1 AND s1.swiper_id < s1.target_id AND s1.direction > 0 AND s2.direction > 0
		ORDER BY 1, 2
		ON CONFLICT DO NOTHING`, base)
	if err != nil {
		return rep, fmt.Errorf("origin seed: matches: %w", err)
	}
	rep.Matches = tag.RowsAffected()
	if _, err := c.Exec(ctx, `
		INSERT INTO conversations (match_id, user_a, user_b, created_at)
		SELECT m.id, m.user_a, m.user_b, m.created_at FROM matches m
		WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.match_id = m.id)
		ORDER BY m.id`); err != nil {
		return rep, fmt.Errorf("origin seed: conversations: %w", err)
	}

	// 4. messages, alternating senders, a fixed timeline per conversation.
	rows, err := c.Query(ctx, `SELECT id, user_a, user_b FROM conversations WHERE id > $1 ORDER BY id`, convBase)
	if err != nil {
		return rep, fmt.Errorf("origin seed: list conversations: %w", err)
	}
	type conv struct{ id, a, b int64 }
	convs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (conv, error) {
		var cv conv
		err := r.Scan(&cv.id, &cv.a, &cv.b)
		return cv, err
	})
	if err != nil {
		return rep, fmt.Errorf("origin seed: list conversations: %w", err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ci, mi, mCount := 0, 0, 0
	var mr *rand.Rand
	msgRow := func() ([]any, error) {
		for mi >= mCount {
			if ci >= len(convs) {
				return nil, nil
			}
			mr = rand.New(rand.NewPCG(o.Seed, uint64(convs[ci].id)))
			mCount = int(mr.ExpFloat64() * float64(max(o.MessagesPerMatch, 0)))
			mi = 0
			ci++
		}
		cv := convs[ci-1]
		sender := cv.a
		if (mi+int(cv.id))%2 == 1 {
			sender = cv.b
		}
		at := t0.Add(time.Duration(cv.id)*time.Minute + time.Duration(mi)*time.Second*37)
		row := []any{cv.id, sender, fmt.Sprintf("%s %d", bioBits[mr.IntN(len(bioBits))], mi), fmt.Sprintf("seed-%d-%d", cv.id, mi), at}
		mi++
		return row, nil
	}
	rep.Messages, err = c.CopyFrom(ctx, pgx.Identifier{"messages"},
		[]string{"conversation_id", "sender_id", "body", "client_msg_id", "created_at"}, pgx.CopyFromFunc(msgRow))
	if err != nil {
		return rep, fmt.Errorf("origin seed: copy messages: %w", err)
	}
	if _, err := c.Exec(ctx, `ANALYZE users; ANALYZE swipes; ANALYZE matches; ANALYZE conversations; ANALYZE messages`); err != nil {
		return rep, fmt.Errorf("origin seed: analyze: %w", err)
	}
	rep.Elapsed = time.Since(start)
	log.Info("seed: done", "report", rep.String())
	return rep, nil
}
