package push_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/push/pushfake"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

func TestWindowEndsTheBatch(t *testing.T) {
	// Two events well inside a 1 s window, then nothing: the window's end
	// (not Drain, not the size) sends them, collapsed.
	r := newRig(t, push.Options{Window: time.Second})
	r.device(r.bo, store.IOS, apnsToken(1), "en", false)
	r.n.Enqueue(r.message("one"))
	r.n.Enqueue(r.message("two"))
	waitFor(t, "the window to end", func() bool { return r.apns.Count() >= 1 })
	got := r.apns.Received()
	if len(got) != 1 || got[0].Data["count"] != "2" || got[0].Body != "2 new messages from Ana" {
		t.Fatalf("notifications %+v, want one for both messages", got)
	}
}

func TestEachUserGetsOnlyTheirOwn(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.ana, store.IOS, apnsToken(1), "en", true)
	r.device(r.bo, store.IOS, apnsToken(2), "en", true)
	r.n.Enqueue(r.message("for bo only"))
	r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.ana, FromID: r.bo, ConversationID: r.conv})
	r.drain()
	for _, n := range r.apns.Received() {
		switch n.Token {
		case apnsToken(1):
			if n.Data["kind"] != "match" || strings.Contains(n.Body, "for bo only") {
				t.Fatalf("Ana's device got %+v", n)
			}
		case apnsToken(2):
			if n.Data["kind"] != "message" {
				t.Fatalf("Bo's device got %+v", n)
			}
		default:
			t.Fatalf("unknown token %s", n.Token)
		}
	}
	if r.apns.Count() != 2 {
		t.Fatalf("%d notifications, want 2", r.apns.Count())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, push.Options{Window: time.Hour, Registerer: reg, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	r.apns.Fail(&pushfake.Failure{Status: 500, Reason: "InternalServerError", Times: 1})
	r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
	r.n.Enqueue(r.message("hi"))
	r.drain()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]float64{} // "provider/priority/result"
	for _, mf := range mfs {
		if mf.GetName() != "spark_push_sent_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			sent[l["provider"]+"/"+l["priority"]+"/"+l["result"]] += m.GetCounter().GetValue()
		}
	}
	retries := sent["apns/high/retry"] + sent["apns/medium/retry"]
	if sent["apns/high/ok"] != 1 || sent["apns/medium/ok"] != 1 || retries != 1 {
		t.Fatalf("spark_push_sent_total %v, want one ok per priority and the 500 as one retry", sent)
	}
	for _, name := range []string{"spark_push_batch_size", "spark_push_delivery_seconds", "spark_push_queue_depth"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Fatalf("%s: %d series, %v", name, n, err)
		}
	}
}

// stuckProvider answers nothing until its context ends.
type stuckProvider struct{ called chan struct{} }

func (s stuckProvider) Name() string { return "stuck" }

func (s stuckProvider) Send(ctx context.Context, d store.Device, n push.Notification) error {
	select {
	case s.called <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestCloseDoesNotWaitForABacklog(t *testing.T) {
	st := memory.New()
	p := stuckProvider{called: make(chan struct{}, 1)}
	n, err := push.New(push.Options{Directory: st, Providers: map[store.Platform]push.Provider{store.IOS: p},
		BatchSize: 1, SendTimeout: time.Hour, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		id, err := st.CreateUser(t.Context(), store.NewUser{Profile: store.ProfileUpdate{Name: "u", Age: 30, Gender: "man", Active: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutDevice(t.Context(), id, store.Device{Platform: store.IOS, Token: apnsToken(i), AppID: topic, Locale: "en"}); err != nil {
			t.Fatal(err)
		}
		n.Enqueue(push.Event{Kind: push.KindMatch, UserID: id, FromID: 1})
	}
	<-p.called
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waiting for sends an hour long and a backlog")
	}
}

func TestNothingFromABlockedUser(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	r.n.Enqueue(r.message("before the block"))
	// Bo blocks Ana before the batch goes out.
	if _, err := r.st.Block(t.Context(), r.bo, r.ana); err != nil {
		t.Fatal(err)
	}
	r.n.Enqueue(push.Event{Kind: push.KindLike, UserID: r.bo, FromID: r.ana})
	r.drain()
	if got := r.apns.Received(); len(got) != 0 {
		t.Fatalf("notifications from a blocked user: %+v", got)
	}
}
