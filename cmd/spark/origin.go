package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/tiered"
)

// The origin subcommand: `spark origin [flags]`, `spark origin migrate`,
// `spark origin token --user N`, `spark origin seed --users N`. All logic
// lives in package origin; this file only maps flags and environment.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "origin",
		Usage: "[--listen <addr>] [--debug-listen <addr>] [--database-url <url>] [--replica-url <url>] [--jwt-secret <s>] [--jwt-public-key [<kid>=]<pem>] [--jwt-issuer <iss>] [--jwt-audience <aud>] [--jwt-max-lifetime <d>] [--demo-users <n>] [--migrate] [--photo-dir <dir>] [--events-token <t> | --events-redis <addr>] [--message-batch-size <n>] [--message-batch-wait <d>] [--message-batch-lanes <n>] [--push=false] [--push-window <d>] [--push-batch-size <n>] [--apns-key-file <p8> --apns-key-id <id> --apns-team-id <id>] [--fcm-credentials-file <json>]",
		Short: "Runs the Spark origin API (embedded store by default, PostGIS with --database-url)",
		Long: `
Runs the Spark origin API: matching, swipes, profiles, chat and location.

With no --database-url (or SPARK_DATABASE_URL) it uses an embedded in-memory
store seeded with --demo-users demo users around a few cities (all its data
is lost when the process exits), and a fixed
development JWT secret unless --jwt-secret / SPARK_JWT_SECRET is set. On
PostGIS it refuses to start without a secret (or public keys), with the
development secret, or with a secret shorter than 32 bytes.

Tokens: HS256 with --jwt-secret; EdDSA (Ed25519) and RS256 (RSA, at least
2048 bits) with --jwt-public-key PEM files, each "path" or "kid=path" (a
token's kid header selects the key). exp is required and may lie at most
--jwt-max-lifetime (default 24h) from now and from iat; --jwt-issuer and
--jwt-audience, when set, must match iss and aud.

Photo uploads (POST /api/users/me/photos) are normalised once (upright,
sRGB, no metadata, long side capped) and stored under --photo-dir
(SPARK_PHOTO_DIR): required with PostGIS, a spark-photos directory under the
OS temporary directory with the embedded store (created 0700; one another
user created first is refused).

Locations are stored coarsely (the centre of a ~1 km grid cell) and
PUT /api/users/me/location is limited per user (--location-limit-burst at
once, then one per --location-limit-every; 0 turns it off for load tests).

Realtime: every message, match, read receipt and unmatch is appended to the
users' event logs (GET /api/events) in the write's own transaction, then
published to the edges: through Redis with --events-redis, else over the
origin's own stream at GET /internal/events, which edges authenticate to with
--events-token / SPARK_EVENTS_TOKEN (the embedded store defaults to a
development token; PostGIS refuses it and tokens under 32 bytes, and without
a token serves no stream). Each user keeps their last --events-keep events or
--events-keep-for of them, whichever is more. Concurrent message sends are
stored --message-batch-size at a time, a send waiting at most
--message-batch-wait for company (only while other sends are in flight),
--message-batch-lanes batches committing at once (a conversation keeps its lane).

Push notifications: devices register with PUT /api/users/me/devices. New
messages, matches and likes are batched per user (--push-window,
--push-batch-size) and sent through APNs (--apns-key-file, --apns-key-id,
--apns-team-id) and FCM (--fcm-credentials-file, a service account key).
A platform without credentials gets its notifications written to the log
instead (what make run shows). --push=false turns them off.

Subcommands:
  spark origin migrate            apply the embedded SQL migrations
  spark origin token --user 42    print a bearer token for user 42
  spark origin seed --users N     bulk-load deterministic demo data with COPY`,
		CobraFunc: func(cmd *cobra.Command) {
			pf := cmd.PersistentFlags()
			pf.String("database-url", os.Getenv("SPARK_DATABASE_URL"), "PostgreSQL+PostGIS URL (env SPARK_DATABASE_URL); empty: embedded store")
			addJWTFlags(cmd)
			addPoolFlags(cmd)
			f := cmd.Flags()
			f.String("listen", envOr("SPARK_ORIGIN_LISTEN", origin.DefaultListen), "listen address")
			f.String("debug-listen", os.Getenv("SPARK_ORIGIN_DEBUG_LISTEN"), "loopback address serving Go's profiles at /debug/pprof/ (env SPARK_ORIGIN_DEBUG_LISTEN); empty: none")
			f.String("replica-url", os.Getenv("SPARK_REPLICA_URL"), "read replica URL for profile reads and message history (env SPARK_REPLICA_URL)")
			f.StringSlice("jwt-public-key", nil, "Ed25519 (EdDSA) or RSA (RS256) public key PEM file, as path or kid=path (repeatable)")
			f.Int("demo-users", 500, "embedded store: number of demo users to seed")
			f.Uint64("demo-seed", 1, "embedded store: seed of the demo data")
			f.Bool("migrate", false, "PostGIS: apply migrations at start-up")
			f.Bool("cell-cache", true, "PostGIS: build suggestions through the geohash cell-candidate cache and cached per-user exclusion sets, a hit without SQL (--cell-cache=false: the exact KNN query per request; see origin/README)")
			f.Duration("cell-cache-ttl", postgis.DefaultCellTTL, "PostGIS: cell-candidate cache entry lifetime (writes through the store purge at once; the TTL bounds what bypasses it; expired cells are served as long again while refreshed in the background)")
			f.Duration("cell-cache-user-ttl", 10*time.Minute, "PostGIS: lifetime of a cached user state (location, preferences, exclusion set)")
			f.Int64("cell-cache-bytes", postgis.DefaultCellCacheBytes, "PostGIS: in-process memory of the cell-candidate cache: half the store (cells with profiles, user states), half cells kept decoded for in-place reads")
			f.StringSlice("cell-cache-redis", nil, "PostGIS: Redis address(es) backing the cell-candidate cache, so origin instances share cells and invalidations (two or more: a Cluster)")
			f.String("photo-dir", os.Getenv("SPARK_PHOTO_DIR"), "directory for uploaded photo originals (env SPARK_PHOTO_DIR); required with PostGIS, default "+origin.DefaultPhotoDir()+" with the embedded store")
			f.Int64("photo-max-bytes", origin.DefaultPhotoMaxBytes, "largest photo upload in bytes (413 beyond)")
			f.Int64("photo-max-pixels", origin.DefaultPhotoMaxPixels, "largest declared photo size in pixels, checked on the header before decoding (half for PNG and lossless WebP)")
			f.Int("photo-max-count", origin.DefaultMaxPhotos, "uploaded photos per user (409 beyond)")
			f.Int("photo-max-side", imageproxy.DefaultOriginalSide, "long side of stored originals in pixels (uploads are shrunk to it, never enlarged)")
			f.Int("photo-max-in-flight", origin.DefaultPhotoInFlight, "photo uploads received or processed at once (bodies are held in memory; 503 beyond)")
			f.Duration("location-limit-every", origin.DefaultLocationLimit.Every, "location updates per user: one more per this interval after the burst (429 with Retry-After beyond); 0 switches the limit off (load tests)")
			f.Int("location-limit-burst", origin.DefaultLocationLimit.Burst, "location updates per user allowed at once")
			f.Int("message-batch-size", origin.DefaultMessageBatchSize, "most message sends stored in one transaction (1: no batching)")
			f.Duration("message-batch-wait", origin.DefaultMessageBatchWait, "longest a message send waits for company before its batch is stored (only while other sends are in flight; 0: never)")
			f.Int("message-batch-lanes", origin.DefaultMessageBatchLanes, "message batches committing at once (each conversation always in the same lane, so its order holds)")
			f.StringSlice("events-redis", nil, "Redis address(es) of the realtime bus (two or more: a Cluster); empty: the origin serves its own event stream at "+origin.StreamPath)
			f.String("events-redis-prefix", origin.DefaultEventsRedisPrefix, "prefix of the realtime bus's Redis channels and keys")
			f.String("events-token", os.Getenv("SPARK_EVENTS_TOKEN"), "shared secret edges present to "+origin.StreamPath+" (env SPARK_EVENTS_TOKEN); with PostGIS at least 32 bytes, never the development token; none on PostGIS: no stream")
			f.Int64("events-keep", origin.DefaultEventsKeepLast, "event log retention: a user's newest events always kept")
			f.Duration("events-keep-for", origin.DefaultEventsKeepFor, "event log retention: events younger than this are kept whatever --events-keep says")
			f.Duration("events-prune-every", origin.DefaultEventsPruneEvery, "how often event log retention runs (in the background)")
			f.Bool("push", true, "push notifications (APNs, FCM; logged per platform without credentials)")
			f.Duration("push-window", 2*time.Second, "push: how long a user's first event waits for more before their notifications go out")
			f.Int("push-batch-size", 50, "push: a user's notifications go out at once when this many events are waiting")
			f.Int("push-queue-size", 100_000, "push: events waiting for batching; beyond it events are dropped (counted), requests never wait")
			f.Duration("push-max-age", time.Hour, "push: a notification a provider has not taken this long after its event is dropped (counted)")
			f.String("apns-key-file", os.Getenv("SPARK_APNS_KEY_FILE"), "APNs token-auth .p8 key (env SPARK_APNS_KEY_FILE); empty: iOS notifications are logged, not sent")
			f.String("apns-key-id", os.Getenv("SPARK_APNS_KEY_ID"), "APNs key id of --apns-key-file (env SPARK_APNS_KEY_ID)")
			f.String("apns-team-id", os.Getenv("SPARK_APNS_TEAM_ID"), "Apple developer team id (env SPARK_APNS_TEAM_ID)")
			f.String("apns-url", envOr("SPARK_APNS_URL", "https://api.push.apple.com"), "APNs server (https://api.sandbox.push.apple.com for development builds)")
			f.String("fcm-credentials-file", os.Getenv("SPARK_FCM_CREDENTIALS_FILE"), "FCM service account key JSON (env SPARK_FCM_CREDENTIALS_FILE); empty: Android notifications are logged, not sent")
			f.String("fcm-url", envOr("SPARK_FCM_URL", "https://fcm.googleapis.com"), "FCM HTTP v1 API root")
			cmd.RunE = runOrigin
			cmd.AddCommand(migrateCmd(), tokenCmd(), seedCmd())
		},
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// addJWTFlags adds the token settings the origin and `origin token` share.
func addJWTFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("jwt-secret", os.Getenv("SPARK_JWT_SECRET"), "HS256 secret (env SPARK_JWT_SECRET); with PostGIS at least 32 bytes, never the development secret")
	pf.String("jwt-issuer", os.Getenv("SPARK_JWT_ISSUER"), "iss every token must carry, and `token` issues (env SPARK_JWT_ISSUER); empty: not checked")
	pf.String("jwt-audience", os.Getenv("SPARK_JWT_AUDIENCE"), "aud every token must name, and `token` issues (env SPARK_JWT_AUDIENCE); empty: not checked")
	pf.Duration("jwt-max-lifetime", authtoken.DefaultMaxLifetime, "longest token lifetime accepted: exp at most this far from now and from iat (`token` issues within it)")
}

func addPoolFlags(cmd *cobra.Command) {
	d := postgis.DefaultPoolConfig()
	pf := cmd.PersistentFlags()
	pf.Int32("db-max-conns", d.MaxConns, "pool: max connections (measured: 2-4 per database core)")
	pf.Int32("db-min-conns", d.MinConns, "pool: min connections")
	pf.Int32("db-min-idle-conns", d.MinIdleConns, "pool: min idle connections")
	pf.Duration("db-max-conn-lifetime", d.MaxConnLifetime, "pool: max connection lifetime")
	pf.Duration("db-max-conn-idle-time", d.MaxConnIdleTime, "pool: max connection idle time")
	pf.Duration("db-acquire-timeout", d.AcquireTimeout, "pool: deadline to acquire a connection")
	pf.Duration("db-statement-timeout", d.StatementTimeout, "statement_timeout on every connection")
	pf.Duration("db-lock-timeout", d.LockTimeout, "lock_timeout on every connection")
	pf.Bool("db-custom-plans", false, "keep PostgreSQL's plan_cache_mode instead of forcing generic plans")
}

func poolConfig(cmd *cobra.Command) (postgis.PoolConfig, error) {
	fl := &flagReader{cmd: cmd}
	pc := postgis.PoolConfig{
		MaxConns:         fl.Int32("db-max-conns"),
		MinConns:         fl.Int32("db-min-conns"),
		MinIdleConns:     fl.Int32("db-min-idle-conns"),
		MaxConnLifetime:  fl.Duration("db-max-conn-lifetime"),
		MaxConnIdleTime:  fl.Duration("db-max-conn-idle-time"),
		AcquireTimeout:   fl.Duration("db-acquire-timeout"),
		StatementTimeout: fl.Duration("db-statement-timeout"),
		LockTimeout:      fl.Duration("db-lock-timeout"),
		CustomPlans:      fl.Bool("db-custom-plans"),
	}
	return pc, fl.Err()
}

func runOrigin(cmd *cobra.Command, _ []string) error {
	fl := &flagReader{cmd: cmd}
	pool, poolErr := poolConfig(cmd)
	cfg := origin.Config{
		Listen:         fl.String("listen"),
		DebugListen:    fl.String("debug-listen"),
		DatabaseURL:    fl.String("database-url"),
		ReplicaURL:     fl.String("replica-url"),
		JWTSecret:      fl.String("jwt-secret"),
		JWTPublicKeys:  fl.StringSlice("jwt-public-key"),
		JWTIssuer:      fl.String("jwt-issuer"),
		JWTAudience:    fl.String("jwt-audience"),
		JWTMaxLifetime: fl.Duration("jwt-max-lifetime"),
		DemoUsers:      fl.Int("demo-users"),
		DemoSeed:       fl.Uint64("demo-seed"),
		Migrate:        fl.Bool("migrate"),
		Pool:           pool,
		PhotoDir:       fl.String("photo-dir"),
		PhotoMaxBytes:  fl.Int64("photo-max-bytes"),
		PhotoMaxPixels: fl.Int64("photo-max-pixels"),
		MaxPhotos:      fl.Int("photo-max-count"),
		PhotoMaxSide:   fl.Int("photo-max-side"),
		PhotoInFlight:  fl.Int("photo-max-in-flight"),
		LocationLimit: &origin.RateLimit{
			Every: fl.Duration("location-limit-every"),
			Burst: fl.Int("location-limit-burst"),
		},
		MessageBatch: &origin.MessageBatchOptions{
			Size:  fl.Int("message-batch-size"),
			Wait:  fl.Duration("message-batch-wait"),
			Lanes: fl.Int("message-batch-lanes"),
		},
		Events: origin.EventsConfig{
			Redis:       fl.StringSlice("events-redis"),
			RedisPrefix: fl.String("events-redis-prefix"),
			Token:       fl.String("events-token"),
			KeepLast:    fl.Int64("events-keep"),
			KeepFor:     fl.Duration("events-keep-for"),
			PruneEvery:  fl.Duration("events-prune-every"),
		},
	}
	cfg.Push = origin.PushConfig{
		Disabled:           !fl.Bool("push"),
		Window:             fl.Duration("push-window"),
		BatchSize:          fl.Int("push-batch-size"),
		QueueSize:          fl.Int("push-queue-size"),
		MaxAge:             fl.Duration("push-max-age"),
		APNsKeyFile:        fl.String("apns-key-file"),
		APNsKeyID:          fl.String("apns-key-id"),
		APNsTeamID:         fl.String("apns-team-id"),
		APNsURL:            fl.String("apns-url"),
		FCMCredentialsFile: fl.String("fcm-credentials-file"),
		FCMURL:             fl.String("fcm-url"),
	}
	cfg.CellCache.Enabled = fl.Bool("cell-cache")
	cfg.CellCache.TTL = fl.Duration("cell-cache-ttl")
	cfg.CellCache.MaxBytes = fl.Int64("cell-cache-bytes")
	cfg.CellCache.UserTTL = fl.Duration("cell-cache-user-ttl")
	if addrs := fl.StringSlice("cell-cache-redis"); len(addrs) > 0 {
		ro := tiered.DefaultRedisOptions(addrs...)
		cfg.CellCache.Redis = &ro
	}
	if err := errors.Join(fl.Err(), poolErr); err != nil {
		return fmt.Errorf("origin flags: %w", err)
	}
	ctx, stop := signalContext()
	defer stop()
	return origin.Run(ctx, cfg, newLogger(), nil)
}

func migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Applies the embedded numbered SQL migrations to --database-url",
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, _ := cmd.Flags().GetString("database-url")
			if url == "" {
				return errors.New("origin migrate: --database-url or SPARK_DATABASE_URL is required")
			}
			pc, err := poolConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			applied, err := origin.MigrateDatabase(ctx, url, pc)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied migrations: %v\n", applied)
			return nil
		},
	}
}

func tokenCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "token --user <id>[,<id>...]",
		Short: "Prints a bearer token per user, one per line, signed with the origin's secret",
		Long: `Prints a bearer token for each --user, one per line in the order given,
signed with the secret the origin would use (--jwt-secret / SPARK_JWT_SECRET),
carrying --jwt-issuer and --jwt-audience when set (iss defaults to
spark-origin). --ttl defaults to --jwt-max-lifetime (24h); a longer one is
refused, since the origin would refuse the token. Several ids (--user 1,2,3
or --user repeated) give load generators one token per virtual user without
starting the binary once per user.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			users, _ := f.GetInt64Slice("user")
			ttl, _ := f.GetDuration("ttl")
			secret, _ := f.GetString("jwt-secret")
			url, _ := f.GetString("database-url")
			iss, _ := f.GetString("jwt-issuer")
			aud, _ := f.GetString("jwt-audience")
			maxLife, _ := f.GetDuration("jwt-max-lifetime")
			if maxLife <= 0 {
				maxLife = authtoken.DefaultMaxLifetime
			}
			if ttl == 0 {
				ttl = maxLife
			}
			if ttl < 0 || ttl > maxLife {
				return fmt.Errorf("origin token: --ttl %v must be positive and at most --jwt-max-lifetime %v", ttl, maxLife)
			}
			if iss == "" {
				iss = origin.DefaultTokenIssuer
			}
			s, dev, err := origin.ResolveSecret(secret, url, false)
			if err != nil {
				return fmt.Errorf("origin token: %w", err)
			}
			if dev {
				fmt.Fprintln(os.Stderr, "warning: signed with the fixed development secret (embedded store only)")
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			now := time.Now()
			for _, user := range users {
				tok, err := authtoken.Issue([]byte(s), user, authtoken.IssueOptions{TTL: ttl, Now: now, Issuer: iss, Audience: aud})
				if err != nil {
					return fmt.Errorf("origin token for user %d: %w", user, err)
				}
				fmt.Fprintln(out, tok)
			}
			if err := out.Flush(); err != nil {
				return fmt.Errorf("origin token: write: %w", err)
			}
			return nil
		},
	}
	c.Flags().Int64Slice("user", nil, "user id (the token's sub); several: 1,2,3 or repeated")
	c.Flags().Duration("ttl", 0, "token lifetime (default and at most --jwt-max-lifetime)")
	_ = c.MarkFlagRequired("user")
	return c
}

func seedCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "seed --users <n>",
		Short: "Bulk-loads deterministic demo data into --database-url with COPY",
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			url, _ := f.GetString("database-url")
			if url == "" {
				return errors.New("origin seed: --database-url or SPARK_DATABASE_URL is required")
			}
			var o origin.SeedOptions
			o.Users, _ = f.GetInt("users")
			o.Seed, _ = f.GetUint64("seed")
			o.SwipesPerUser, _ = f.GetInt("swipes-per-user")
			o.MatchedShare, _ = f.GetFloat64("matched-share")
			o.MessagesPerMatch, _ = f.GetInt("messages-per-match")
			pc, err := poolConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			rep, err := origin.SeedDatabase(ctx, url, pc, o, newLogger())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	d := origin.DefaultSeedOptions()
	c.Flags().Int("users", d.Users, "users to create")
	c.Flags().Uint64("seed", d.Seed, "random seed (same seed, same data)")
	c.Flags().Int("swipes-per-user", d.SwipesPerUser, "average swipes per user (heavy-tailed)")
	c.Flags().Float64("matched-share", d.MatchedShare, "share of users given a match with a conversation")
	c.Flags().Int("messages-per-match", d.MessagesPerMatch, "average messages per conversation")
	return c
}
