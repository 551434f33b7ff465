package push_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

// countingDirectory records the users of each DevicesOf call.
type countingDirectory struct {
	*memory.Store
	mu    sync.Mutex
	calls [][]int64
}

func (d *countingDirectory) DevicesOf(ctx context.Context, users []int64) (map[int64][]store.Device, error) {
	d.mu.Lock()
	d.calls = append(d.calls, slices.Clone(users))
	d.mu.Unlock()
	return d.Store.DevicesOf(ctx, users)
}

func TestBatchesEndingTogetherShareOneDeviceLookup(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	dir := &countingDirectory{Store: r.st}
	n, err := push.New(push.Options{Directory: dir, Providers: r.providers(t), Window: time.Second, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const users = 40
	ids := make([]int64, users)
	for i := range ids {
		ids[i] = r.user(fmt.Sprint("U", i))
		r.device(ids[i], store.IOS, apnsToken(100+i), "en", false)
	}
	start := time.Now()
	for _, id := range ids {
		n.Enqueue(push.Event{Kind: push.KindLike, UserID: id})
	}
	waitFor(t, "every user's notification", func() bool { return r.apns.Count() >= users })
	if took := time.Since(start); took < time.Second {
		t.Fatalf("notifications sent %v after their events, before the 1 s window ended", took)
	}
	dir.mu.Lock()
	calls := dir.calls
	dir.mu.Unlock()
	var looked []int64
	for _, c := range calls {
		if len(c) > 32 {
			t.Fatalf("one lookup for %d users, more than a round holds (32)", len(c))
		}
		looked = append(looked, c...)
	}
	slices.Sort(looked)
	if !slices.Equal(looked, ids) {
		t.Fatalf("users looked up %v, want each of %v once", looked, ids)
	}
	// 40 users whose windows began within moments end on the same tick:
	// two rounds (32 + 8), three or four if the events straddled a tick.
	if len(calls) > 4 {
		t.Fatalf("%d device lookups for %d users whose windows ended together, want at most 4", len(calls), users)
	}
}
