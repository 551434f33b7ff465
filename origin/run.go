package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/postgis"
)

// Config is everything `spark origin` can be told.
type Config struct {
	Listen         string // default 127.0.0.1:8081
	DatabaseURL    string // empty: embedded memory store
	ReplicaURL     string // optional read replica (profiles, message history)
	JWTSecret      string // HS256 secret; empty: DevJWTSecret with the memory store only
	JWTPublicKeys  []string
	DemoUsers      int    // memory store: demo users to seed (default 500)
	DemoSeed       uint64 // memory store: seed of the demo data
	Migrate        bool   // PostGIS: apply migrations at start-up
	Pool           postgis.PoolConfig
	CellCache      postgis.CellCacheConfig // PostGIS: cell-candidate cache for suggestions
	ShutdownPeriod time.Duration
	// PhotoDir keeps uploaded originals; empty: DefaultPhotoDir with the
	// embedded store, an error with PostGIS (see ResolvePhotoDir).
	PhotoDir       string
	PhotoMaxBytes  int64 // default DefaultPhotoMaxBytes
	PhotoMaxPixels int64 // default DefaultPhotoMaxPixels
	MaxPhotos      int   // uploads per user, default DefaultMaxPhotos
	PhotoMaxSide   int   // long side of stored originals, default imageproxy.DefaultOriginalSide
	PhotoInFlight  int   // uploads received or processed at once, default DefaultPhotoInFlight
	// LocationLimit bounds location updates per user; nil:
	// DefaultLocationLimit, Every 0: off (load tests).
	LocationLimit *RateLimit
	// MessageBatch groups concurrent sends into one transaction; nil:
	// DefaultMessageBatchOptions.
	MessageBatch *MessageBatchOptions
	// Events configures the realtime bus and the event log's retention.
	Events EventsConfig
	// Push configures push notifications (APNs, FCM, or a log).
	Push PushConfig

	// Token checks besides JWTSecret and JWTPublicKeys (Ed25519 or RSA PEM
	// files, each "path" or "kid=path"); see NewConfiguredAuthenticator.
	JWTIssuer      string        // iss every token must carry; empty: not checked
	JWTAudience    string        // aud every token must name; empty: not checked
	JWTMaxLifetime time.Duration // longest token lifetime accepted; 0: 24 h (authtoken.DefaultMaxLifetime)

	// DebugListen, if set, serves Go's profiles (/debug/pprof/) on this
	// loopback address, apart from the API.
	DebugListen string
}

// DefaultListen is the origin's default listen address.
const DefaultListen = "127.0.0.1:8081"

// ResolveSecret returns the HS256 secret to use: the configured one, or the
// development secret when the embedded store is in use (dev reports that
// the development secret is in use). With PostGIS (production) no secret
// (and no public keys), the development secret and a secret shorter than
// 32 bytes are errors.
func ResolveSecret(secret, databaseURL string, hasPublicKeys bool) (s string, dev bool, err error) {
	if secret != "" {
		if databaseURL != "" {
			if err := authtoken.CheckSecret([]byte(secret)); err != nil {
				return "", false, fmt.Errorf("origin: refusing the JWT secret of --jwt-secret / SPARK_JWT_SECRET on PostGIS: %w", err)
			}
		}
		return secret, secret == DevJWTSecret, nil
	}
	if databaseURL == "" {
		return DevJWTSecret, true, nil
	}
	if hasPublicKeys {
		return "", false, nil
	}
	return "", false, errors.New("origin: refusing to start on PostGIS without a JWT secret: set --jwt-secret or SPARK_JWT_SECRET")
}

// DefaultPhotoDir is where the embedded store's uploads go when no
// directory is configured: spark-photos under the OS temporary directory,
// created private (0700); Run refuses one another user created first
// (NewPrivatePhotoStorage).
func DefaultPhotoDir() string { return filepath.Join(os.TempDir(), "spark-photos") }

// ResolvePhotoDir returns the directory for uploaded originals: the
// configured one, or DefaultPhotoDir with the embedded store (dev reports
// true). With PostGIS it is required: the database would outlive photos in
// a temporary directory.
func ResolvePhotoDir(dir, databaseURL string) (d string, dev bool, err error) {
	if dir != "" {
		return dir, false, nil
	}
	if databaseURL == "" {
		return DefaultPhotoDir(), true, nil
	}
	return "", false, errors.New("origin: refusing to start on PostGIS without a photo directory: set --photo-dir or SPARK_PHOTO_DIR")
}

// poolAdapter exposes a postgis store's pool stats to the metrics.
type poolAdapter struct{ s *postgis.Store }

// PoolStats implements PoolStater.
func (a poolAdapter) PoolStats() []PoolStat {
	var out []PoolStat
	for _, p := range a.s.PoolStats() {
		out = append(out, PoolStat{Name: p.Name, Acquired: p.Acquired, Idle: p.Idle, Total: p.Total, Max: p.Max,
			AcquireCount: p.AcquireCount, AcquireWaitNS: p.AcquireWaitNanos, Fallbacks: p.Fallbacks, Behind: p.Behind,
			Bounded: p.Bounded, LagBytes: p.LagBytes})
	}
	return out
}

// poolStaterFor returns the pool stats source of a store, or nil.
func poolStaterFor(st store.Store) PoolStater {
	switch s := st.(type) {
	case PoolStater:
		return s
	case *postgis.Store:
		return poolAdapter{s}
	}
	return nil
}

// OpenStore opens the configured store: PostGIS when DatabaseURL is set
// (migrating first when asked), else a memory store seeded with demo users.
func OpenStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, string, PoolStater, error) {
	if cfg.DatabaseURL == "" {
		m := memory.New()
		n := cfg.DemoUsers
		if n > 0 {
			if err := SeedDemo(ctx, m, n, cfg.DemoSeed); err != nil {
				return nil, "", nil, fmt.Errorf("origin: seed demo users: %w", err)
			}
			log.Info("embedded store seeded with demo users", "users", n, "seed", cfg.DemoSeed)
		}
		return m, "memory", nil, nil
	}
	pg, err := postgis.Open(ctx, postgis.Config{URL: cfg.DatabaseURL, ReplicaURL: cfg.ReplicaURL, Pool: cfg.Pool, CellCache: cfg.CellCache})
	if err != nil {
		return nil, "", nil, fmt.Errorf("origin: open PostGIS: %w", err)
	}
	if cfg.Migrate {
		applied, err := pg.Migrate(ctx)
		if err != nil {
			pg.Close()
			return nil, "", nil, fmt.Errorf("origin: migrate: %w", err)
		}
		log.Info("migrations applied", "versions", applied)
	}
	return pg, "postgis", poolAdapter{pg}, nil
}

// Run serves the origin API until ctx is cancelled, then shuts down
// gracefully. ready, if non-nil, receives the bound address once listening.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(addr string)) error {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	auth, dev, err := NewConfiguredAuthenticator(cfg)
	if err != nil {
		return err
	}
	if dev {
		log.Warn("!!! USING THE FIXED DEVELOPMENT JWT SECRET: anyone can mint tokens. Set --jwt-secret / SPARK_JWT_SECRET outside development. !!!")
	}
	photoDir, devPhotos, err := ResolvePhotoDir(cfg.PhotoDir, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	newStorage := NewDirPhotoStorage
	if devPhotos {
		newStorage = NewPrivatePhotoStorage // in a directory anyone may write to
	}
	photos, err := newStorage(photoDir)
	if err != nil {
		return err
	}
	defer photos.Close()
	if devPhotos {
		log.Info("uploaded photos go to a temporary directory (set --photo-dir to keep them)", "dir", photoDir)
	}
	events := cfg.Events.withDefaults()
	bus, err := openEventBus(events, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer bus.close()
	st, name, ps, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics := NewMetrics(ps)
	var notifier *push.Notifier
	var pushTo PushEnqueuer
	if !cfg.Push.Disabled {
		var presence push.Presence
		if bus.presence != nil {
			presence = bus.presence
		}
		if notifier, err = NewPushNotifier(cfg.Push, st, presence, metrics.Registry, log); err != nil {
			return err
		}
		defer notifier.Close()
		pushTo = notifier
	}
	srv, err := NewServer(ServerOptions{Store: st, StoreName: name, Auth: auth, Metrics: metrics, Logger: log,
		Photos: PhotoOptions{Storage: photos, MaxBytes: cfg.PhotoMaxBytes, MaxPixels: cfg.PhotoMaxPixels,
			MaxPhotos: cfg.MaxPhotos, MaxSide: cfg.PhotoMaxSide, MaxInFlight: cfg.PhotoInFlight},
		LocationLimit: cfg.LocationLimit, MessageBatch: cfg.MessageBatch,
		Events: bus.publisher, Presence: bus.presence, EventStream: bus.stream, Push: pushTo})
	if err != nil {
		return err
	}
	pruneCtx, stopPruning := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		pruneEvents(pruneCtx, st, events, metrics.EventsPruned, log)
	}()
	defer func() { stopPruning(); <-pruned }()
	if cfg.DebugListen != "" {
		_, stopDebug, err := serveDebug(cfg.DebugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("origin: listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	ll := DefaultLocationLimit
	if cfg.LocationLimit != nil {
		ll = *cfg.LocationLimit
	}
	if name == "memory" {
		log.Warn("spark origin listening; embedded memory store: every user, swipe, match and message lives in this process only and is LOST when it exits (use --database-url for data that must last)",
			"addr", ln.Addr().String(), "store", name, "location_limit", ll.String())
	} else {
		log.Info("spark origin listening", "addr", ln.Addr().String(), "store", name, "location_limit", ll.String())
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("origin: serve: %w", err)
	case <-ctx.Done():
	}
	period := cfg.ShutdownPeriod
	if period <= 0 {
		period = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), period)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("origin: shutdown: %w", err)
	}
	if err := srv.Drain(sctx); err != nil {
		log.Warn("shutdown: message batches or events for the bus still under way (edges catch up from the log)", "err", err)
	}
	if notifier != nil {
		if err := notifier.Drain(sctx); err != nil {
			log.Warn("shutdown: push notifications still queued are not sent", "err", err)
		}
	}
	return nil
}
