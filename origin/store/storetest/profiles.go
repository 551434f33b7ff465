package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

func testProfile(t *testing.T, s store.Store) {
	id := mk(t, s, "ana", 30, "woman", nil, nil)
	p, err := s.GetProfile(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Name != "ana" || p.Age != 30 || p.Gender != "woman" || !p.Active || len(p.Photos) != 1 || p.Version < 1 {
		t.Fatalf("unexpected profile %+v", p)
	}
	_, err = s.GetProfile(ctx(t), id+1000)
	wantErr(t, err, store.ErrNotFound, "missing profile")
	up, err := s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "Ana María", Age: 31, Gender: "nonbinary", Bio: "héllo 👋", Photos: nil, Active: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if up.Version <= p.Version || up.Name != "Ana María" || up.Bio != "héllo 👋" || len(up.Photos) != 0 || up.Photos == nil {
		t.Fatalf("update: %+v (was version %d)", up, p.Version)
	}
	got, _ := s.GetProfile(ctx(t), id)
	if got.Version != up.Version || got.Age != 31 {
		t.Fatalf("get after update: %+v", got)
	}
	_, err = s.UpdateProfile(ctx(t), id+1000, store.ProfileUpdate{Name: "x", Age: 20, Gender: "man", Active: true}, 0)
	wantErr(t, err, store.ErrNotFound, "update missing profile")
}

func testProfileIfVersion(t *testing.T, s store.Store) {
	id := mk(t, s, "bo", 25, "man", nil, nil)
	p, _ := s.GetProfile(ctx(t), id)
	u1, err := s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "bo1", Age: 25, Gender: "man", Active: true}, p.Version)
	if err != nil {
		t.Fatalf("first conditional update: %v", err)
	}
	_, err = s.UpdateProfile(ctx(t), id, store.ProfileUpdate{Name: "bo2", Age: 25, Gender: "man", Active: true}, p.Version)
	wantErr(t, err, store.ErrPreconditionFailed, "lost update")
	got, _ := s.GetProfile(ctx(t), id)
	if got.Name != "bo1" || got.Version != u1.Version {
		t.Fatalf("lost update was applied: %+v", got)
	}
}

func testPreferences(t *testing.T, s store.Store) {
	id := mk(t, s, "cy", 40, "woman", nil, nil)
	p, err := s.GetPreferences(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	def := store.DefaultPreferences()
	if p.MinAge != def.MinAge || p.MaxAge != def.MaxAge || p.MaxDistanceKm != def.MaxDistanceKm || len(p.Genders) != len(def.Genders) {
		t.Fatalf("defaults: %+v", p)
	}
	want := store.Preferences{MinAge: 30, MaxAge: 45, MaxDistanceKm: 12, Genders: []string{"man"}}
	if err := s.PutPreferences(ctx(t), id, want); err != nil {
		t.Fatal(err)
	}
	if p, err = s.GetPreferences(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if p.MinAge != 30 || p.MaxAge != 45 || p.MaxDistanceKm != 12 || len(p.Genders) != 1 || p.Genders[0] != "man" {
		t.Fatalf("stored prefs: %+v", p)
	}
	wantErr(t, s.PutPreferences(ctx(t), id+999, want), store.ErrNotFound, "prefs of missing user")
	_, err = s.GetPreferences(ctx(t), id+999)
	wantErr(t, err, store.ErrNotFound, "get prefs of missing user")
}

func testSQLStrings(t *testing.T, s store.Store) {
	evil := "Robert'); DROP TABLE users;-- \\x00 $1 %s"
	id, err := s.CreateUser(ctx(t), store.NewUser{Profile: store.ProfileUpdate{Name: evil, Age: 30, Gender: "man", Bio: "' OR '1'='1", Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.GetProfile(ctx(t), id)
	if err != nil || p.Name != evil || p.Bio != "' OR '1'='1" {
		t.Fatalf("round trip: %+v %v", p, err)
	}
	a, _, conv := matchPair(t, s)
	m, _, err := send(t, s, a, conv, evil, evil)
	if err != nil || m.Body != evil || m.ClientMsgID != evil {
		t.Fatalf("message: %+v %v", m, err)
	}
}

func testPhotos(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "woman", pt(48.85, 2.35), nil)
	b := mk(t, s, "b", 31, "man", pt(48.851, 2.351), nil)
	p, err := s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Uploads == nil || len(p.Uploads) != 0 {
		t.Fatalf("new user's uploads %#v, want empty and non-nil", p.Uploads)
	}
	v := p.Version
	for _, name := range []string{"one.jpg", "two.png"} {
		got, err := s.AddPhoto(ctx(t), a, name, 2)
		if err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		if got.Version <= v || got.Uploads[len(got.Uploads)-1] != name {
			t.Fatalf("add %s: version %d after %d, uploads %v", name, got.Version, v, got.Uploads)
		}
		v = got.Version
	}
	if _, err := s.AddPhoto(ctx(t), a, "three.jpg", 2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("third photo over a limit of 2: %v, want ErrConflict", err)
	}
	if _, err := s.AddPhoto(ctx(t), a, "one.jpg", 5); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same name twice: %v, want ErrConflict", err)
	}
	if _, err := s.AddPhoto(ctx(t), 1<<40, "x.jpg", 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
	// A profile update replaces the photo URLs, never the uploads.
	up, err := s.UpdateProfile(ctx(t), a, store.ProfileUpdate{Name: "a2", Age: 30, Gender: "woman", Photos: nil, Active: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(up.Uploads) != "[one.jpg two.png]" || len(up.Photos) != 0 {
		t.Fatalf("after update: uploads %v, photos %v", up.Uploads, up.Photos)
	}
	cs, err := s.Suggestions(ctx(t), b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != a || fmt.Sprint(cs[0].Uploads) != "[one.jpg two.png]" {
		t.Fatalf("suggestions carry uploads: %+v", cs)
	}
	rm, err := s.RemovePhoto(ctx(t), a, "one.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rm.Uploads) != "[two.png]" || rm.Version <= up.Version {
		t.Fatalf("after remove: uploads %v, version %d after %d", rm.Uploads, rm.Version, up.Version)
	}
	if _, err := s.RemovePhoto(ctx(t), a, "one.jpg"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
	if _, err := s.RemovePhoto(ctx(t), b, "two.png"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing another user's photo: %v, want ErrNotFound", err)
	}
	if _, err := s.AddPhoto(ctx(t), a, "three.jpg", 2); err != nil {
		t.Fatalf("a freed slot: %v", err)
	}
	p, err = s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Uploads) != "[two.png three.jpg]" {
		t.Fatalf("stored uploads %v", p.Uploads)
	}
}

func testConcurrentPhotos(t *testing.T, s store.Store) {
	a := mk(t, s, "a", 30, "woman", nil, nil)
	const n, limit = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddPhoto(context.Background(), a, fmt.Sprintf("p%d.jpg", i), limit)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Fatal(err)
		}
	}
	p, err := s.GetProfile(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if ok != limit || len(p.Uploads) != limit {
		t.Fatalf("%d concurrent uploads against a limit of %d: %d accepted, %d stored", n, limit, ok, len(p.Uploads))
	}
}
