package origin

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

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
	applied, err := st.Migrate(ctx)
	if err != nil {
		return applied, fmt.Errorf("origin migrate: %w", err)
	}
	return applied, nil
}

// SeedDatabase migrates url and bulk-loads deterministic data
// (postgis.Store.Seed): users clustered around SeedCities() (15% inactive),
// swipes concentrated on users of the same city (heavy-tailed per user),
// mutual likes turned into matches with conversations, and messages. New
// users get ids after the current maximum, so seeding twice adds a second
// population.
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
	if _, err := st.Migrate(ctx); err != nil {
		return SeedReport{}, fmt.Errorf("origin seed: %w", err)
	}
	n, err := st.Seed(ctx, newSeedRun(o, log, start))
	rep := SeedReport{Users: n.Users, Swipes: n.Swipes, Matches: n.Matches, Messages: n.Messages, Elapsed: time.Since(start)}
	if err != nil {
		return rep, fmt.Errorf("origin seed: %w", err)
	}
	log.Info("seed: done", "report", rep.String())
	return rep, nil
}

// seedRun generates one seed's rows (postgis.SeedSource): users first,
// remembering their cities, then swipes (partners' mutual likes first,
// then same-city targets), then messages, alternating senders on a fixed
// timeline per conversation.
type seedRun struct {
	o      SeedOptions
	log    *slog.Logger
	start  time.Time
	g      *Generator
	base   int64     // id of the run's first user - 1
	city   []uint8   // city of each new user, by index from 0
	byCity [][]int32 // indexes of the new users of each city
}

var _ postgis.SeedSource = (*seedRun)(nil)

func newSeedRun(o SeedOptions, log *slog.Logger, start time.Time) *seedRun {
	return &seedRun{o: o, log: log, start: start, g: NewGenerator(o.Seed),
		city: make([]uint8, o.Users), byCity: make([][]int32, len(cities))}
}

// Loaded logs progress.
func (r *seedRun) Loaded(step string, n postgis.SeedCounts) {
	r.log.Info("seed: "+step+" loaded", "users", n.Users, "swipes", n.Swipes, "matches", n.Matches, "messages", n.Messages,
		"elapsed", time.Since(r.start).Round(time.Millisecond))
}

// Users generates o.Users users with ids from firstID.
func (r *seedRun) Users(firstID int64) func() (store.NewUser, bool) {
	r.base = firstID - 1
	i := 0
	return func() (store.NewUser, bool) {
		if i >= r.o.Users {
			return store.NewUser{}, false
		}
		u, ci := r.g.User(int(r.base) + i + 1)
		r.city[i] = uint8(ci)
		r.byCity[ci] = append(r.byCity[ci], int32(i))
		i++
		return u, true
	}
}

// Swipes pairs MatchedShare of each city's users as partners (mutual
// likes), then lets every user swipe on same-city users: most a few
// (exponential, mean SwipesPerUser-6), 1% heavily (185..1029).
func (r *seedRun) Swipes() func() (postgis.SeedSwipe, bool) {
	n := r.o.Users
	partner := make([]int32, n)
	for k := range partner {
		partner[k] = -1
	}
	for _, ids := range r.byCity {
		perm := r.g.Rand().Perm(len(ids))
		for k := 0; k+1 < len(perm); k += 2 {
			if r.g.Rand().Float64() < r.o.MatchedShare {
				a, b := ids[perm[k]], ids[perm[k+1]]
				partner[a], partner[b] = b, a
			}
		}
	}
	heavyMean := float64(max(1, r.o.SwipesPerUser-6))
	swiper := 0
	var pending []postgis.SeedSwipe
	seen := map[int32]struct{}{}
	id := func(i int32) int64 { return r.base + int64(i) + 1 }
	return func() (postgis.SeedSwipe, bool) {
		for len(pending) == 0 {
			if swiper >= n {
				return postgis.SeedSwipe{}, false
			}
			me := int32(swiper)
			swiper++
			rng := r.g.Rand()
			clear(seen)
			if p := partner[me]; p >= 0 {
				seen[p] = struct{}{}
				pending = append(pending, postgis.SeedSwipe{Swiper: id(me), Target: id(p), Direction: store.Like})
			}
			var k int
			if rng.IntN(100) == 0 {
				k = 185 + rng.IntN(845)
			} else {
				k = int(rng.ExpFloat64() * heavyMean)
			}
			pool := r.byCity[r.city[me]]
			k = min(k, len(pool)-1)
			for tries := 0; len(seen) < k && tries < 4*k+8; tries++ {
				t := pool[rng.IntN(len(pool))]
				if t == me {
					continue
				}
				if _, dup := seen[t]; dup {
					continue
				}
				seen[t] = struct{}{}
				d := seedDirection(rng)
				if partner[t] == me {
					d = store.Like
				}
				pending = append(pending, postgis.SeedSwipe{Swiper: id(me), Target: id(t), Direction: d})
			}
		}
		sw := pending[0]
		pending = pending[1:]
		return sw, true
	}
}

// seedDirection draws a swipe: 5% superlike, 55% like, 40% pass.
func seedDirection(rng *rand.Rand) store.Direction {
	x := rng.IntN(100)
	switch {
	case x < 5:
		return store.Superlike
	case x < 60:
		return store.Like
	}
	return store.Pass
}

// Messages writes about MessagesPerMatch messages (exponential) per
// conversation, alternating senders, one every 37 s from a start that
// depends on the conversation.
func (r *seedRun) Messages(convs []postgis.SeedConversation) func() (store.Message, bool) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ci, mi, mCount := 0, 0, 0
	var mr *rand.Rand
	return func() (store.Message, bool) {
		for mi >= mCount {
			if ci >= len(convs) {
				return store.Message{}, false
			}
			mr = rand.New(rand.NewPCG(r.o.Seed, uint64(convs[ci].ID)))
			mCount = int(mr.ExpFloat64() * float64(max(r.o.MessagesPerMatch, 0)))
			mi = 0
			ci++
		}
		cv := convs[ci-1]
		sender := cv.UserA
		if (mi+int(cv.ID))%2 == 1 {
			sender = cv.UserB
		}
		m := store.Message{ConversationID: cv.ID, SenderID: sender, Body: fmt.Sprintf("%s %d", bioBits[mr.IntN(len(bioBits))], mi),
			ClientMsgID: fmt.Sprintf("seed-%d-%d", cv.ID, mi), CreatedAt: t0.Add(time.Duration(cv.ID)*time.Minute + time.Duration(mi)*time.Second*37)}
		mi++
		return m, true
	}
}
