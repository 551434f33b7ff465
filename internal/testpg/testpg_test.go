package testpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testpg"
)

// A row committed on the primary reaches the replica; a paused replica
// does not see the next one until replay resumes; the replica refuses
// writes.
func TestPrimaryAndReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := testpg.StartPrimary(t, nil)
	p.CreateDatabase(t, "app")
	pc := p.Connect(t, "app")
	if _, err := pc.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	r := p.StartReplica(t)
	p.WaitReplayed(t, r)
	rc := r.Connect(t, "app")
	count := func() (n int) {
		t.Helper()
		if err := rc.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("replica has %d rows, want 1", n)
	}
	var postgis string
	if err := rc.QueryRow(ctx, "SELECT postgis_lib_version()").Scan(&postgis); err != nil {
		t.Fatalf("PostGIS on the replica: %v", err)
	}
	r.PauseReplay(t)
	if _, err := pc.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("paused replica has %d rows, want 1", n)
	}
	r.ResumeReplay(t)
	p.WaitReplayed(t, r)
	if n := count(); n != 2 {
		t.Fatalf("resumed replica has %d rows, want 2", n)
	}
	if _, err := rc.Exec(ctx, "INSERT INTO t VALUES (3)"); err == nil {
		t.Fatal("the replica accepted a write")
	}
	r.Stop()
	r.Start()
	p.WaitReplayed(t, r)
}
