package push_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/push/pushfake"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

const topic = "app.spark"

// presence is a set of connected users (the realtime presence stand-in:
// the notifier only asks Online).
type presence struct {
	mu sync.Mutex
	on map[int64]bool
}

func (p *presence) set(user int64, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on == nil {
		p.on = make(map[int64]bool)
	}
	p.on[user] = on
}

func (p *presence) Online(ctx context.Context, user int64) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on[user], nil
}

type rig struct {
	t        *testing.T
	st       *memory.Store
	apns     *pushfake.APNs
	fcm      *pushfake.FCM
	n        *push.Notifier
	presence *presence
	ana, bo  int64
	conv     int64
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newRig: Ana and Bo matched, both fakes, a notifier with o's settings.
func newRig(t *testing.T, o push.Options) *rig {
	t.Helper()
	r := &rig{t: t, st: memory.New(), presence: &presence{}}
	var err error
	if r.apns, err = pushfake.NewAPNs(topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.apns.Close)
	if r.fcm, err = pushfake.NewFCM("spark-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.fcm.Close)
	o.Directory, o.Presence = r.st, r.presence
	o.Providers = r.providers(t)
	if o.Logger == nil {
		o.Logger = quietLog()
	}
	if r.n, err = push.New(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.n.Close)
	r.ana = r.user("Ana")
	r.bo = r.user("Bo")
	if _, err := r.st.Swipe(t.Context(), r.ana, r.bo, store.Like); err != nil {
		t.Fatal(err)
	}
	res, err := r.st.Swipe(t.Context(), r.bo, r.ana, store.Like)
	if err != nil || res.Match == nil {
		t.Fatalf("match: %+v %v", res, err)
	}
	r.conv = res.Match.ConversationID
	t.Cleanup(func() {
		for _, why := range append(r.apns.Rejected(), r.fcm.Rejected()...) {
			t.Errorf("a fake refused a malformed request: %s", why)
		}
	})
	return r
}

// providers returns APNs and FCM providers talking to the rig's fakes.
func (r *rig) providers(t *testing.T) map[store.Platform]push.Provider {
	t.Helper()
	apns, err := push.NewAPNs(push.APNsOptions{URL: r.apns.URL(), KeyID: r.apns.KeyID, TeamID: r.apns.TeamID, Key: r.apns.Key(), Client: r.apns.Client()})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := r.fcm.ServiceAccountJSON()
	if err != nil {
		t.Fatal(err)
	}
	fcm, err := push.NewFCM(push.FCMOptions{URL: r.fcm.URL(), CredentialsJSON: sa, Client: r.fcm.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return map[store.Platform]push.Provider{store.IOS: apns, store.Android: fcm}
}

func (r *rig) user(name string) int64 {
	r.t.Helper()
	id, err := r.st.CreateUser(r.t.Context(), store.NewUser{Profile: store.ProfileUpdate{Name: name, Age: 30, Gender: "woman", Active: true}})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// apnsToken is a valid-looking APNs token numbered i.
func apnsToken(i int) string { return fmt.Sprintf("%064x", i+1) }

func (r *rig) device(user int64, p store.Platform, token, locale string, previews bool) {
	r.t.Helper()
	if _, err := r.st.PutDevice(r.t.Context(), user, store.Device{Platform: p, Token: token, AppID: topic, Locale: locale, Previews: previews}); err != nil {
		r.t.Fatal(err)
	}
}

// message stores a message from Ana to Bo and returns Bo's event.
func (r *rig) message(body string) push.Event {
	r.t.Helper()
	res := store.SendOne(r.t.Context(), r.st, store.MessageDraft{SenderID: r.ana, ConversationID: r.conv, Body: body, ClientMsgID: body})
	if res.Err != nil {
		r.t.Fatal(res.Err)
	}
	return push.Event{Kind: push.KindMessage, UserID: r.bo, FromID: r.ana, ConversationID: r.conv, MessageID: res.Message.ID, Body: body}
}

func (r *rig) drain() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.n.Drain(ctx); err != nil {
		r.t.Fatalf("drain: %v (stats %+v)", err, r.n.Stats())
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchCollapsesMessagesFromOneSender(t *testing.T) {
	// The batch is sent when it holds BatchSize events, not by the clock.
	r := newRig(t, push.Options{Window: time.Hour, BatchSize: 3})
	r.device(r.bo, store.IOS, apnsToken(1), "en-GB", true)
	for i := range 3 {
		r.n.Enqueue(r.message(fmt.Sprint("hello ", i)))
	}
	waitFor(t, "the batch", func() bool { return r.apns.Count() >= 1 })
	r.drain()
	got := r.apns.Received()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want one collapsed: %+v", len(got), got)
	}
	n := got[0]
	if n.Title != "Ana" || n.Body != "3 new messages from Ana" || n.PushType != "alert" || n.Priority != "5" ||
		n.CollapseID != fmt.Sprint("conv-", r.conv) || n.Data["count"] != "3" || n.Data["kind"] != "message" {
		t.Fatalf("notification %+v", n)
	}
	if until := time.Until(n.Expiration); until < 50*time.Minute || until > time.Hour+time.Minute {
		t.Fatalf("medium priority expires in %v, want about an hour", until)
	}
}

func TestPrioritiesFromKindAndPresence(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	r.device(r.bo, store.Android, "fcm-bo-1", "en", true)

	check := func(what string, ev push.Event, apnsType, apnsPrio, fcmType, fcmPrio string) {
		t.Helper()
		before, beforeF := r.apns.Count(), r.fcm.Count()
		r.n.Enqueue(ev)
		r.drain()
		a, f := r.apns.Received()[before:], r.fcm.Received()[beforeF:]
		if len(a) != 1 || len(f) != 1 {
			t.Fatalf("%s: %d APNs and %d FCM notifications, want one each", what, len(a), len(f))
		}
		if a[0].PushType != apnsType || a[0].Priority != apnsPrio || f[0].PushType != fcmType || f[0].Priority != fcmPrio {
			t.Fatalf("%s: APNs %s/%s FCM %s/%s, want %s/%s %s/%s", what, a[0].PushType, a[0].Priority, f[0].PushType, f[0].Priority,
				apnsType, apnsPrio, fcmType, fcmPrio)
		}
		if apnsType == "background" && (a[0].Title != "" || a[0].Body != "" || f[0].Title != "") {
			t.Fatalf("%s: a quiet notification has text: %+v %+v", what, a[0], f[0])
		}
	}
	check("match", push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv}, "alert", "10", "notification", "high")
	check("message, away", r.message("away"), "alert", "5", "notification", "normal")
	r.presence.set(r.bo, true)
	check("message, connected", r.message("here"), "background", "5", "data", "normal")
	r.presence.set(r.bo, false)
	check("like", push.Event{Kind: push.KindLike, UserID: r.bo, FromID: r.ana}, "background", "5", "data", "normal")
	last := r.apns.Received()[0]
	if last.Title != "New match!" || !strings.Contains(last.Body, "Ana") || last.CollapseID != "match" {
		t.Fatalf("match card %+v", last)
	}
	for _, n := range r.fcm.Received() {
		if n.Data["kind"] == "like" && n.Data["from_id"] != "" {
			t.Fatalf("a like names who liked: %+v", n)
		}
	}
}

func TestReadMessagesAreNotNotified(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	first, second := r.message("first"), r.message("second")
	// Bo read the first one live before the batch went out.
	if _, err := r.st.MarkRead(t.Context(), r.bo, r.conv, first.MessageID); err != nil {
		t.Fatal(err)
	}
	r.n.Enqueue(first)
	r.n.Enqueue(second)
	r.drain()
	got := r.apns.Received()
	if len(got) != 1 || got[0].Body != "second" || got[0].Data["count"] != "1" {
		t.Fatalf("notifications %+v, want only the unread second", got)
	}
	if _, err := r.st.MarkRead(t.Context(), r.bo, r.conv, second.MessageID); err != nil {
		t.Fatal(err)
	}
	r.n.Enqueue(second)
	r.drain()
	if n := r.apns.Count(); n != 1 {
		t.Fatalf("%d notifications after everything was read, want still 1", n)
	}
}

func TestLocaleAndPreviews(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.IOS, apnsToken(1), "es-MX", false)
	r.device(r.bo, store.Android, "fcm-bo", "fr", true) // no French: English
	r.n.Enqueue(r.message("secret text"))
	r.drain()
	a, f := r.apns.Received(), r.fcm.Received()
	if len(a) != 1 || len(f) != 1 {
		t.Fatalf("got %d/%d", len(a), len(f))
	}
	if a[0].Title != "Ana" || a[0].Body != "Nuevo mensaje" || strings.Contains(a[0].Body, "secret") {
		t.Fatalf("es, previews off: %+v", a[0])
	}
	if f[0].Body != "secret text" {
		t.Fatalf("fr→en, previews on: %+v", f[0])
	}
	r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
	r.drain()
	if a := r.apns.Received(); a[1].Title != "¡Nuevo match!" {
		t.Fatalf("es match: %+v", a[1])
	}
}

func TestDeadTokensAreRemoved(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	r.device(r.bo, store.IOS, apnsToken(2), "en", true)
	r.device(r.bo, store.Android, "fcm-dead", "en", true)
	r.apns.Unregister(apnsToken(1))
	r.fcm.Unregister("fcm-dead")
	r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
	r.drain()
	ds, err := r.st.Devices(t.Context(), r.bo)
	if err != nil || len(ds) != 1 || ds[0].Token != apnsToken(2) {
		t.Fatalf("devices after the dead answers: %+v %v", ds, err)
	}
	if s := r.n.Stats(); s.Dead != 2 || s.Sent != 1 {
		t.Fatalf("stats %+v, want 2 dead 1 sent", s)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, platform := range []store.Platform{store.IOS, store.Android} {
		t.Run(string(platform), func(t *testing.T) {
			r := newRig(t, push.Options{Window: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
			tok, fail := apnsToken(1), r.apns.Fail
			if platform == store.Android {
				tok, fail = "fcm-bo", r.fcm.Fail
			}
			r.device(r.bo, platform, tok, "en", true)
			fail(&pushfake.Failure{Status: 429, Reason: "TooManyRequests", RetryAfter: 1, Times: 1})
			start := time.Now()
			r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
			r.drain()
			got := append(r.apns.Received(), r.fcm.Received()...)
			if len(got) != 1 {
				t.Fatalf("%d delivered, want 1", len(got))
			}
			// The backoff alone is at most 10 ms: only Retry-After explains a second.
			if waited := got[0].At.Sub(start); waited < time.Second {
				t.Fatalf("delivered %v after the 429, before its Retry-After of 1 s", waited)
			}
			if s := r.n.Stats(); s.Retries != 1 || s.Sent != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestProviderDownThenBackLosesNothing(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour, BatchSize: 1, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	const users = 200
	ids := make([]int64, users)
	for i := range ids {
		ids[i] = r.user(fmt.Sprint("u", i))
		r.device(ids[i], store.IOS, apnsToken(i), "en", true)
		r.device(ids[i], store.Android, fmt.Sprint("fcm-", i), "en", true)
	}
	r.apns.SetDown(true)
	r.fcm.Fail(&pushfake.Failure{Status: 503, Reason: ""})
	for _, id := range ids {
		if !r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: id, FromID: r.ana, ConversationID: r.conv}) {
			t.Fatal("enqueue refused")
		}
	}
	waitFor(t, "failing sends", func() bool { return r.n.Stats().Retries >= 10 })
	if r.apns.Count()+r.fcm.Count() != 0 {
		t.Fatal("delivered while down")
	}
	r.apns.SetDown(false)
	r.fcm.Fail(nil)
	r.drain()
	if a, f := r.apns.Count(), r.fcm.Count(); a != users || f != users {
		t.Fatalf("after the outage: %d APNs and %d FCM notifications, want %d each (stats %+v)", a, f, users, r.n.Stats())
	}
	if s := r.n.Stats(); s.Expired != 0 || s.Dropped != 0 || s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOutageLongerThanMaxAgeDropsWithACount(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour, MaxAge: 200 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	r.device(r.bo, store.IOS, apnsToken(1), "en", true)
	r.apns.SetDown(true)
	r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
	r.drain()
	if s := r.n.Stats(); s.Expired != 1 || s.Sent != 0 {
		t.Fatalf("stats %+v, want the notification expired", s)
	}
}

// blockingDirectory holds DevicesOf until release is closed.
type blockingDirectory struct {
	*memory.Store
	release chan struct{}
}

func (b blockingDirectory) DevicesOf(ctx context.Context, users []int64) (map[int64][]store.Device, error) {
	<-b.release
	return b.Store.DevicesOf(ctx, users)
}

func TestEnqueueNeverBlocks(t *testing.T) {
	dir := blockingDirectory{Store: memory.New(), release: make(chan struct{})}
	n, err := push.New(push.Options{Directory: dir, BatchSize: 1, QueueSize: 10, Workers: 1, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	defer close(dir.release)
	dropped := false
	for i := 0; i < 10_000 && !dropped; i++ {
		dropped = !n.Enqueue(push.Event{Kind: push.KindLike, UserID: int64(i + 1)})
	}
	if !dropped || n.Stats().Dropped == 0 {
		t.Fatalf("10,000 events into a stuck notifier with a queue of 10 were all taken: %+v", n.Stats())
	}
}

func TestFCMAccessTokenIsReused(t *testing.T) {
	r := newRig(t, push.Options{Window: time.Hour})
	r.device(r.bo, store.Android, "fcm-bo", "en", true)
	for range 5 {
		r.n.Enqueue(push.Event{Kind: push.KindMatch, UserID: r.bo, FromID: r.ana, ConversationID: r.conv})
		r.drain()
	}
	if r.fcm.Count() != 5 || r.fcm.TokensMinted() != 1 {
		t.Fatalf("%d sent with %d access tokens, want 5 with 1", r.fcm.Count(), r.fcm.TokensMinted())
	}
}
