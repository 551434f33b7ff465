package chat

import (
	"slices"
	"testing"
	"time"

	"github.com/spark-edge/spark/loadtest"
)

func TestLedgerCountsExactly(t *testing.T) {
	l := NewLedger()
	t0 := time.Unix(1000, 0)
	// m1: stored and received once. m2: stored, received twice. m3: stored,
	// never received (lost). m4: never confirmed, received (stored after
	// all). m5: neither (unconfirmed). m6: received by a third user too.
	for i, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6"} {
		l.Sent(id, 1, 2, t0.Add(time.Duration(i)*time.Millisecond), 0)
	}
	l.Sent("m1", 1, 2, t0.Add(time.Second), 0) // a resend keeps the first send time
	if d, ok := l.Stored("m1", t0.Add(3*time.Millisecond)); !ok || d != 3*time.Millisecond {
		t.Fatalf("stored m1: %s %v", d, ok)
	}
	if _, ok := l.Stored("m1", t0); ok {
		t.Fatal("a second confirmation counted")
	}
	if _, ok := l.Stored("nope", t0); ok {
		t.Fatal("an unknown id confirmed")
	}
	l.Stored("m2", t0)
	l.Stored("m3", t0)
	l.Stored("m6", t0)
	if got := l.Unconfirmed(1, t0.Add(time.Hour)); !slices.Equal(got, []string{"m4", "m5"}) {
		t.Fatalf("unconfirmed %v, want [m4 m5]", got)
	}
	if got := l.Unconfirmed(1, t0.Add(3*time.Millisecond)); len(got) != 0 {
		t.Fatalf("unconfirmed before the cutoff %v, want none (m4 was sent at +3ms, m5 at +4ms)", got)
	}
	d := l.Received("m1", 2, t0.Add(10*time.Millisecond), 0)
	if !d.Known || !d.First || d.Latency != 10*time.Millisecond || d.AfterDrop {
		t.Fatalf("m1 delivery %+v", d)
	}
	l.Received("m2", 2, t0, 0)
	if d := l.Received("m2", 2, t0, 0); d.First {
		t.Fatal("a second delivery counted as first")
	}
	if d := l.Received("m4", 2, t0.Add(time.Second), 1); !d.AfterDrop {
		t.Fatal("a delivery after a drop of the pair not marked")
	}
	if d := l.Received("m6", 3, t0, 0); !d.Misdelivered {
		t.Fatal("a delivery to a third user not marked misdelivered")
	}
	l.Received("m6", 2, t0, 0)
	if d := l.Received("zz", 2, t0, 0); d.Known {
		t.Fatal("an unknown id known")
	}
	if got := l.Unconfirmed(1, t0.Add(time.Hour)); !slices.Equal(got, []string{"m5"}) {
		t.Fatalf("unconfirmed after m4's delivery %v, want [m5]", got)
	}
	if n := l.Outstanding(); n != 2 {
		t.Fatalf("outstanding %d, want 2 (m3, m5)", n)
	}
	want := loadtest.MessageLedger{Sent: 6, Resent: 1, Stored: 5, Received: 4, Lost: 1, Duplicated: 1, Misdelivered: 1, Unconfirmed: 1}
	if got := l.Tally(nil); got != want {
		t.Fatalf("tally %+v\nwant  %+v", got, want)
	}
	if !l.Pending(1, "m5") || l.Pending(1, "m1") {
		t.Fatal("pending: want m5, not m1")
	}
	// m3 (stored, never received) for a recipient offline at the end waits
	// in its log: not lost.
	want.Lost, want.RecipientOffline = 0, 1
	if got := l.Tally(func(u int64) bool { return u == 2 }); got != want {
		t.Fatalf("tally with user 2 offline %+v\nwant  %+v", got, want)
	}
}
