package tiered

import (
	"context"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testredis"
	"github.com/spark-edge/spark/internal/testutil"
)

// A tag purge's position is remembered per tag, the highest one wins, it
// is forgotten after the window, and past the bound the tags fold into a
// floor that holds every tag.
func TestPurgePositions(t *testing.T) {
	c, clk := newL1(t, 16<<20, 64<<10)
	ctx := context.Background()
	mustSet(t, c, "/p/1", "old", time.Hour, "profile:1")
	if n := c.PurgeTagsAt(ctx, 500, "profile:1", "user:1"); n != 1 {
		t.Fatalf("PurgeTagsAt removed %d entries, want 1", n)
	}
	c.PurgeTagsAt(ctx, 300, "profile:1") // an older write's purge arriving late
	c.PurgeTags(ctx, "profile:2")        // no position: nothing remembered
	for _, tc := range []struct {
		tags []string
		want uint64
	}{
		{[]string{"profile:1"}, 500},
		{[]string{"user:1", "other"}, 500},
		{[]string{"profile:2"}, 0},
		{nil, 0},
	} {
		if got := c.PurgedAt(tc.tags); got != tc.want {
			t.Errorf("PurgedAt(%v) = %d, want %d", tc.tags, got, tc.want)
		}
	}
	clk.advance(DefaultPositionWindow + time.Second)
	if got := c.PurgedAt([]string{"profile:1"}); got != 0 {
		t.Fatalf("after the window PurgedAt = %d, want 0", got)
	}
	c.PurgeTagsAt(ctx, 900, "profile:3") // drops the expired entries
	if n := len(c.positions.byTag); n != 1 {
		t.Fatalf("%d tags remembered after the window, want 1", n)
	}

	c.positions.max = 3
	for i, tag := range []string{"a", "b", "c", "d"} {
		c.PurgeTagsAt(ctx, uint64(1000+i), tag)
	}
	// profile:3, a, b, c overflow the bound of 3 and fold into 1002; d
	// is remembered on its own after.
	if got := c.PurgedAt([]string{"never-purged"}); got != 1002 {
		t.Fatalf("after the overflow an unpurged tag is held to %d, want the folded position 1002", got)
	}
	if got := c.PurgedAt([]string{"d"}); got != 1003 {
		t.Fatalf("a tag purged after the overflow: %d, want 1003", got)
	}
	clk.advance(DefaultPositionWindow + time.Second)
	if got := c.PurgedAt([]string{"never-purged"}); got != 0 {
		t.Fatalf("the floor outlived the window: %d", got)
	}
}

// A purge's position reaches the other nodes with the purge.
func TestPurgePositionAcrossNodes(t *testing.T) {
	ro := generous(testOptions(t, testredis.Shared(t)))
	a, b := newTiered(t, ro), newTiered(t, ro)
	a.PurgeTagsAt(context.Background(), 0x16_B374D848, "profile:7")
	testutil.Eventually(t, delivery, "the purge's position at the other node", func() bool {
		return b.PurgedAt([]string{"profile:7"}) == 0x16_B374D848
	})
}
