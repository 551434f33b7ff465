// Package pgtest gives tests a migrated, empty PostGIS store in a schema of
// their own, so test packages that run in parallel never share tables. It
// fails the test (never skips) when the database is unreachable.
package pgtest

import (
	"context"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/origin/store/postgis"
)

// DefaultURL is used when SPARK_TEST_DATABASE_URL is unset; it is the
// database scripts/test-origin-deps.sh creates.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/spark_test?sslmode=disable"

// URL returns the test database URL from the environment or DefaultURL.
func URL() string {
	if u := os.Getenv("SPARK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	mu       sync.Mutex
	prepared = map[string]error{}
)

// SchemaURL returns the test URL with search_path set to schema, public.
func SchemaURL(t testing.TB, schema string) string {
	t.Helper()
	if _, err := url.Parse(URL()); err != nil {
		t.Fatalf("bad SPARK_TEST_DATABASE_URL: %v", err)
	}
	return schemaURL(schema)
}

// Open returns a store on a fresh (first call per process) or truncated
// schema of the test database, migrated, closed at cleanup.
func Open(t testing.TB, schema string) *postgis.Store {
	t.Helper()
	return OpenWith(t, schema, nil)
}

// OpenWith is Open with a hook to adjust the store's configuration (for
// example to enable the cell-candidate cache).
func OpenWith(t testing.TB, schema string, configure func(*postgis.Config)) *postgis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	db := Pool(t, schema)
	cfg := postgis.Config{URL: SchemaURL(t, schema)}
	if configure != nil {
		configure(&cfg)
	}
	s, err := postgis.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("PostGIS test database unreachable at %s (run scripts/test-origin-deps.sh): %v", URL(), err)
	}
	t.Cleanup(s.Close)
	if _, err := db.Exec(ctx, `TRUNCATE users, preferences, swipes, blocks, matches, conversations,
		messages, conversation_reads, event_heads, events, event_prunes RESTART IDENTITY CASCADE`); err != nil {
		t.Fatalf("truncate test schema %s: %v", schema, err)
	}
	return s
}

// Pool returns a connection pool on schema of the test database (made and
// migrated on the first call per process, as Open does), for the SQL a test
// runs itself; it is closed at cleanup.
func Pool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	mu.Lock()
	err, done := prepared[schema]
	if !done {
		err = prepare(ctx, schema)
		prepared[schema] = err
	}
	mu.Unlock()
	if err != nil {
		t.Fatalf("PostGIS test database at %s unusable (run scripts/test-origin-deps.sh): %v", URL(), err)
	}
	db, err := pgxpool.New(ctx, SchemaURL(t, schema))
	if err != nil {
		t.Fatalf("PostGIS test database unreachable at %s (run scripts/test-origin-deps.sh): %v", URL(), err)
	}
	t.Cleanup(db.Close)
	return db
}

func prepare(ctx context.Context, schema string) error {
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+id+` CASCADE`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+id); err != nil {
		return err
	}
	s, err := postgis.Open(ctx, postgis.Config{URL: schemaURL(schema)})
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Migrate(ctx)
	return err
}

func schemaURL(schema string) string {
	u, err := url.Parse(URL())
	if err != nil {
		return URL()
	}
	q := u.Query()
	q.Set("search_path", schema+",public")
	u.RawQuery = q.Encode()
	return u.String()
}
