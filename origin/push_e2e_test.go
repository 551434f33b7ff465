package origin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/push"
	"github.com/spark-edge/spark/origin/push/pushfake"
	"github.com/spark-edge/spark/origin/store"
)

// pushRig is an API server whose notifier sends to fake APNs and FCM.
type pushRig struct {
	*api
	n    *push.Notifier
	apns *pushfake.APNs
	fcm  *pushfake.FCM
}

func newPushRig(t *testing.T, st store.Store, o push.Options) *pushRig {
	t.Helper()
	ap, err := pushfake.NewAPNs("app.spark")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ap.Close)
	fc, err := pushfake.NewFCM("spark-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.Close)
	apns, err := push.NewAPNs(push.APNsOptions{URL: ap.URL(), KeyID: ap.KeyID, TeamID: ap.TeamID, Key: ap.Key(), Client: ap.Client()})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := fc.ServiceAccountJSON()
	if err != nil {
		t.Fatal(err)
	}
	fcm, err := push.NewFCM(push.FCMOptions{URL: fc.URL(), CredentialsJSON: sa, Client: fc.Client()})
	if err != nil {
		t.Fatal(err)
	}
	o.Directory = st
	o.Providers = map[store.Platform]push.Provider{store.IOS: apns, store.Android: fcm}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := push.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	t.Cleanup(func() {
		for _, why := range append(ap.Rejected(), fc.Rejected()...) {
			t.Errorf("a fake refused a malformed request: %s", why)
		}
	})
	return &pushRig{api: newAPIWith(t, origin.ServerOptions{Store: st, Push: n}), n: n, apns: ap, fcm: fc}
}

func (p *pushRig) drain() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.n.Drain(ctx); err != nil {
		p.t.Fatalf("drain: %v", err)
	}
}

func TestPushThroughTheAPI(t *testing.T) {
	onEachStore(t, testPushThroughTheAPI)
}

func testPushThroughTheAPI(t *testing.T, st store.Store) {
	// A window longer than the test: Drain sends the batches, so what
	// collapses does not depend on timing.
	p := newPushRig(t, st, push.Options{Window: time.Hour})
	ana := mkUser(t, st, "Ana", 30, "woman", 1, 1, nil)
	bo := mkUser(t, st, "Bo", 31, "man", 1, 1.01, nil)
	ta, tb := token(t, ana), token(t, bo)
	anaToken := strings.Repeat("a1", 32)
	expect(t, p.do("PUT", "/api/users/me/devices", ta, `{"platform":"ios","token":"`+anaToken+`","app_id":"app.spark","locale":"en","previews":true}`), 201, "ana's iphone")
	expect(t, p.do("PUT", "/api/users/me/devices", tb, `{"platform":"android","token":"bo-fcm:1","app_id":"app.spark","locale":"es"}`), 201, "bo's android")

	_, conv := p.matchViaAPI(ana, bo) // Ana likes Bo (a like for Bo), Bo likes back (a match for Ana)
	for i := range 3 {
		expect(t, p.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), ta, fmt.Sprintf(`{"body":"hola %d","client_msg_id":"m%d"}`, i, i)), 201, "send")
	}
	// A retry is not a new message.
	expect(t, p.do("POST", fmt.Sprintf("/api/conversations/%d/messages", conv), ta, `{"body":"hola 2","client_msg_id":"m2"}`), 200, "retry")
	p.drain()

	a := p.apns.Received()
	if len(a) != 1 || a[0].Token != anaToken || a[0].Priority != "10" || a[0].PushType != "alert" || a[0].CollapseID != "match" ||
		a[0].Body != "You and Bo liked each other." {
		t.Fatalf("Ana's notifications: %+v, want one high-priority match card", a)
	}
	f := p.fcm.Received()
	if len(f) != 2 {
		t.Fatalf("Bo's notifications: %+v, want a like and one collapsed message notification", f)
	}
	byKind := map[string]pushfake.Received{}
	for _, n := range f {
		byKind[n.Data["kind"]] = n
	}
	like, msg := byKind["like"], byKind["message"]
	if like.PushType != "data" || like.Priority != "normal" || like.Title != "" {
		t.Fatalf("like: %+v, want a quiet data message", like)
	}
	if msg.PushType != "notification" || msg.Priority != "normal" || msg.Title != "Ana" || msg.Body != "3 mensajes nuevos de Ana" ||
		msg.Data["count"] != "3" || msg.CollapseID != fmt.Sprint("conv-", conv) {
		t.Fatalf("messages: %+v, want one medium notification for 3 messages, in Spanish", msg)
	}
	if strings.Contains(msg.Body, "hola") {
		t.Fatalf("previews are off but the text is shown: %+v", msg)
	}
	// Metrics are on the origin's /metrics only when Run wires them; the
	// notifier's counts say the same here.
	if s := p.n.Stats(); s.Sent != 3 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}
