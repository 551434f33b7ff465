package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testpg"
	"github.com/spark-edge/spark/origin/store/postgis"
)

// ReplicatedDB is the database Replicated migrates on its primary.
const ReplicatedDB = "spark"

// Replicated starts a PostgreSQL primary of the test's own (internal/testpg)
// with database ReplicatedDB migrated, and a streaming replica of it that
// has replayed the migration. boot is a store on the primary alone, closed
// at cleanup: another origin, whose writes the stores under test know
// nothing of.
func Replicated(t testing.TB) (primary, replica *testpg.Server, boot *postgis.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary = testpg.StartPrimary(t, nil)
	primary.CreateDatabase(t, ReplicatedDB)
	boot, err := postgis.Open(ctx, postgis.Config{URL: primary.URL(ReplicatedDB)})
	if err != nil {
		t.Fatalf("pgtest: open the primary: %v", err)
	}
	t.Cleanup(boot.Close)
	if _, err := boot.Migrate(ctx); err != nil {
		t.Fatalf("pgtest: migrate the primary: %v", err)
	}
	replica = primary.StartReplica(t)
	primary.WaitReplayed(t, replica)
	return primary, replica, boot
}

// OpenReplicated opens a store on primary with replica for its reads (an
// origin configured with both), closed at cleanup.
func OpenReplicated(t testing.TB, primary, replica *testpg.Server) *postgis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgis.Open(ctx, postgis.Config{URL: primary.URL(ReplicatedDB), ReplicaURL: replica.URL(ReplicatedDB)})
	if err != nil {
		t.Fatalf("pgtest: open with the replica: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
