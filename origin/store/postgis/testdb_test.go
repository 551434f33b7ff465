package postgis_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin/store/postgis"
)

// DefaultTestURL is used when SPARK_TEST_DATABASE_URL is unset
// (scripts/test-origin-deps.sh creates that database).
const DefaultTestURL = "postgres://postgres@127.0.0.1:5432/spark_test?sslmode=disable"

var migrateOnce sync.Once
var migrateErr error

// openTestStore connects to the test database, migrates it once per process
// and empties every table. It fails (never skips) when PostGIS is unreachable.
func openTestStore(t testing.TB) *postgis.Store {
	t.Helper()
	url := os.Getenv("SPARK_TEST_DATABASE_URL")
	if url == "" {
		url = DefaultTestURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := postgis.Open(ctx, postgis.Config{URL: url})
	if err != nil {
		t.Fatalf("PostGIS test database unreachable at %s (run scripts/test-origin-deps.sh): %v", url, err)
	}
	t.Cleanup(s.Close)
	migrateOnce.Do(func() { _, migrateErr = postgis.Migrate(ctx, s.Primary()) })
	if migrateErr != nil {
		t.Fatalf("migrate test database: %v", migrateErr)
	}
	if _, err := s.Primary().Exec(ctx, `TRUNCATE users, preferences, swipes, blocks, matches, conversations,
		messages, conversation_reads RESTART IDENTITY CASCADE`); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	return s
}
