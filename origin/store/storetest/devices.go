package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func dev(p store.Platform, token string) store.Device {
	return store.Device{Platform: p, Token: token, AppID: "app.spark", Locale: "en", Previews: true}
}

func tokens(t *testing.T, s store.Store, user int64) []string {
	t.Helper()
	ds, err := s.Devices(ctx(t), user)
	if err != nil {
		t.Fatalf("devices of %d: %v", user, err)
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		if d.UserID != user || d.UpdatedAt.IsZero() {
			t.Fatalf("device %+v of user %d", d, user)
		}
		out[i] = d.Token
	}
	return out
}

func testDevices(t *testing.T, s store.Store) {
	a := mk(t, s, "Ana", 30, "woman", nil, nil)
	b := mk(t, s, "Bo", 31, "man", nil, nil)
	c := ctx(t)
	if _, err := s.PutDevice(c, 1<<40, dev(store.IOS, "x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device of a missing user: %v, want ErrNotFound", err)
	}
	created, err := s.PutDevice(c, a, dev(store.IOS, "t1"))
	if err != nil || !created {
		t.Fatalf("put t1: created=%v err=%v", created, err)
	}
	// Idempotent: the same token again updates in place.
	d := dev(store.IOS, "t1")
	d.Locale, d.Previews = "es-MX", false
	if created, err = s.PutDevice(c, a, d); err != nil || created {
		t.Fatalf("put t1 again: created=%v err=%v", created, err)
	}
	ds, err := s.Devices(c, a)
	if err != nil || len(ds) != 1 || ds[0].Locale != "es-MX" || ds[0].Previews || ds[0].AppID != "app.spark" || ds[0].Platform != store.IOS {
		t.Fatalf("devices after update: %+v err=%v", ds, err)
	}
	// The same token on the other platform is another device.
	if created, err = s.PutDevice(c, a, dev(store.Android, "t1")); err != nil || !created {
		t.Fatalf("put android t1: created=%v err=%v", created, err)
	}
	// Beyond MaxDevicesPerUser the least recently updated goes.
	for i := 2; i <= store.MaxDevicesPerUser+1; i++ {
		if _, err := s.PutDevice(c, a, dev(store.Android, fmt.Sprint("t", i))); err != nil {
			t.Fatalf("put t%d: %v", i, err)
		}
	}
	got := tokens(t, s, a)
	want := []string{"t6", "t5", "t4", "t3", "t2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("devices %v, want newest first %v (the two t1 replaced)", got, want)
	}
	// Refreshing one makes it the newest, so another is replaced next.
	if _, err := s.PutDevice(c, a, dev(store.Android, "t2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDevice(c, a, dev(store.Android, "t7")); err != nil {
		t.Fatal(err)
	}
	if got := tokens(t, s, a); fmt.Sprint(got) != "[t7 t2 t6 t5 t4]" {
		t.Fatalf("after refresh: %v", got)
	}
	// A token registered by another user moves to them.
	if created, err = s.PutDevice(c, b, dev(store.Android, "t7")); err != nil || created {
		t.Fatalf("move t7: created=%v err=%v", created, err)
	}
	if got := tokens(t, s, a); fmt.Sprint(got) != "[t2 t6 t5 t4]" {
		t.Fatalf("a after move: %v", got)
	}
	if got := tokens(t, s, b); fmt.Sprint(got) != "[t7]" {
		t.Fatalf("b after move: %v", got)
	}
	// Delete: only one's own token.
	if err := s.DeleteDevice(c, b, "t2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete another user's token: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(c, a, "t2"); err != nil {
		t.Fatalf("delete t2: %v", err)
	}
	if err := s.DeleteDevice(c, a, "t2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete t2 twice: %v, want ErrNotFound", err)
	}
	// Dead tokens go whoever holds them; absent ones are fine.
	if err := s.RemoveDeadDevice(c, store.Android, "t7"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDeadDevice(c, store.IOS, "t6"); err != nil { // t6 is android: stays
		t.Fatal(err)
	}
	if got := tokens(t, s, b); len(got) != 0 {
		t.Fatalf("b after dead token: %v", got)
	}
	if got := tokens(t, s, a); fmt.Sprint(got) != "[t6 t5 t4]" {
		t.Fatalf("a at the end: %v", got)
	}
	testDevicesOf(t, s, a, b)
}

// testDevicesOf checks the many-user read against Devices: a holds
// devices, b gets one, a third user none.
func testDevicesOf(t *testing.T, s store.Store, a, b int64) {
	c := ctx(t)
	none := mk(t, s, "Cy", 32, "man", nil, nil)
	if _, err := s.PutDevice(c, b, dev(store.IOS, "b1")); err != nil {
		t.Fatal(err)
	}
	got, err := s.DevicesOf(c, []int64{a, none, b, a, 1 << 40})
	if err != nil {
		t.Fatalf("devices of many: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("devices of many: %d users, want 2 (a and b; none and a missing user absent): %v", len(got), got)
	}
	for _, u := range []int64{a, b} {
		want, err := s.Devices(c, u)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[u]) != fmt.Sprint(want) {
			t.Fatalf("devices of many, user %d: %+v, want as Devices %+v", u, got[u], want)
		}
	}
	if got, err := s.DevicesOf(c, nil); err != nil || len(got) != 0 {
		t.Fatalf("devices of no users: %v %v", got, err)
	}
}

func testConcurrentDevicesKeepTheLimit(t *testing.T, s store.Store) {
	a := mk(t, s, "Ana", 30, "woman", nil, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PutDevice(ctx(t), a, dev(store.IOS, fmt.Sprint("c", i))); err != nil {
				t.Errorf("put c%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if got := tokens(t, s, a); len(got) != store.MaxDevicesPerUser {
		t.Fatalf("%d devices after 20 concurrent registrations, want %d: %v", len(got), store.MaxDevicesPerUser, got)
	}
}

func testReadMark(t *testing.T, s store.Store) {
	a, b, conv := matchPair(t, s)
	if m, err := s.ReadMark(ctx(t), b, conv); err != nil || m != 0 {
		t.Fatalf("read mark before any: %d %v", m, err)
	}
	m1, _, err := send(t, s, a, conv, "one", "r1")
	if err != nil {
		t.Fatal(err)
	}
	m2, _, err := send(t, s, a, conv, "two", "r2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx(t), b, conv, m1.ID); err != nil {
		t.Fatal(err)
	}
	if m, err := s.ReadMark(ctx(t), b, conv); err != nil || m != m1.ID {
		t.Fatalf("read mark %d %v, want %d", m, err, m1.ID)
	}
	if m, err := s.ReadMark(ctx(t), a, conv); err != nil || m >= m2.ID {
		t.Fatalf("sender's read mark %d %v: b's mark leaked", m, err)
	}
	if m, err := s.ReadMark(ctx(t), b, conv+1000); err != nil || m != 0 {
		t.Fatalf("read mark in an unknown conversation: %d %v", m, err)
	}
}
