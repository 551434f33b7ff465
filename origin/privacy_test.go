package origin_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testphotos"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

// TestProfileVisibility checks who may read a profile and how an edge may
// keep each answer: the owner's own answer is private (by number or "me",
// inactive or not); a viewer in a block relation with the owner, either
// direction, gets 404 like a missing user; everyone else gets the shared
// answer with the users it must never reach in Spark-Deny-Users, also on a
// 304; past MaxDenyUsers the answer is private to each viewer; a block
// purges both profiles.
func TestProfileVisibility(t *testing.T) {
	onEachStore(t, testProfileVisibility)
}

func testProfileVisibility(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	owner := mkUser(t, st, "owner", 30, "woman", 1, 1, nil)
	viewer := mkUser(t, st, "viewer", 31, "man", 1, 1, nil)
	blocked := mkUser(t, st, "blocked", 32, "man", 1, 1, nil)
	blocker := mkUser(t, st, "blocker", 33, "man", 1, 1, nil)
	path := fmt.Sprintf("/api/users/%d/profile", owner)
	isPrivate := func(r resp, what string) {
		t.Helper()
		// Private to its credential: an edge keeps it only per credential
		// (purged by user:<id> on every change), never shared.
		if !strings.HasPrefix(r.hdr.Get("Cache-Control"), "private,") || r.hdr.Get("Vary") != "Authorization" ||
			r.hdr.Get(contract.DenyUsers) != "" {
			t.Fatalf("%s: Cache-Control %q, Vary %q, deny %q; want private, Vary: Authorization",
				what, r.hdr.Get("Cache-Control"), r.hdr.Get("Vary"), r.hdr.Get(contract.DenyUsers))
		}
	}

	// The owner, by number and as "me": never public.
	for _, p := range []string{path, "/api/users/me/profile"} {
		r := a.do("GET", p, token(t, owner), "")
		expect(t, r, 200, "own profile "+p)
		isPrivate(r, "own profile "+p)
	}
	// Someone else: shared, no deny list yet.
	r := a.do("GET", path, token(t, viewer), "")
	expect(t, r, 200, "other's profile")
	if r.hdr.Get("Cache-Control") != "public, max-age=300" || r.hdr.Get(contract.DenyUsers) != "" {
		t.Fatalf("shared profile: %v", r.hdr)
	}

	// The owner blocks one user; another user blocks the owner.
	b := a.do("POST", fmt.Sprintf("/api/users/%d/block", blocked), token(t, owner), "")
	expect(t, b, 204, "block")
	want := fmt.Sprintf("profile:%d profile:%d", owner, blocked)
	if !strings.Contains(b.hdr.Get(contract.SparkPurge), want) {
		t.Fatalf("block Spark-Purge %q lacks %q", b.hdr.Get(contract.SparkPurge), want)
	}
	expect(t, a.do("POST", fmt.Sprintf("/api/users/%d/block", owner), token(t, blocker), ""), 204, "block the owner")

	// Both directions: 404, also conditional, also by the other's path.
	for _, who := range []int64{blocked, blocker} {
		expect(t, a.do("GET", path, token(t, who), ""), 404, fmt.Sprintf("profile for %d in a block relation", who))
		expect(t, a.do("GET", path, token(t, who), "", "If-None-Match", "*"), 404, "conditional, blocked")
		r := a.do("GET", fmt.Sprintf("/api/users/%d/profile", who), token(t, owner), "")
		expect(t, r, 404, "the owner reading a blocked user's profile")
	}
	r = a.do("GET", path, token(t, viewer), "")
	expect(t, r, 200, "other's profile after blocks")
	deny := fmt.Sprintf("%d %d", min(blocked, blocker), max(blocked, blocker))
	if r.hdr.Get(contract.DenyUsers) != deny || r.hdr.Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("shared profile after blocks: deny %q (want %q), Cache-Control %q", r.hdr.Get(contract.DenyUsers), deny, r.hdr.Get("Cache-Control"))
	}
	nm := a.do("GET", path, token(t, viewer), "", "If-None-Match", r.hdr.Get("ETag"))
	expect(t, nm, 304, "revalidation")
	if nm.hdr.Get(contract.DenyUsers) != deny {
		t.Fatalf("304 deny list %q, want %q (an edge refreshes the stored one from it)", nm.hdr.Get(contract.DenyUsers), deny)
	}
	// The owner still sees their own.
	isPrivate(a.do("GET", path, token(t, owner), ""), "own profile after blocks")

	// Inactive: 404 to everyone but the owner, who gets it privately.
	if _, err := st.UpdateProfile(context.Background(), owner, store.ProfileUpdate{Name: "owner", Age: 30, Gender: "woman", Active: false}, 0); err != nil {
		t.Fatal(err)
	}
	expect(t, a.do("GET", path, token(t, viewer), ""), 404, "inactive profile")
	r = a.do("GET", path, token(t, owner), "")
	expect(t, r, 200, "own inactive profile by number")
	isPrivate(r, "own inactive profile by number")
}

// TestProfileManyBlocks: with more users in a block relation with the
// owner than a deny list holds, the answer is private to each viewer, and
// a viewer beyond the listed ones is still refused.
func TestProfileManyBlocks(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			a := newAPI(t, st)
			ctx := context.Background()
			owner := mkUser(t, st, "owner", 30, "woman", 1, 1, nil)
			viewer := mkUser(t, st, "viewer", 30, "man", 1, 1, nil)
			var last int64
			for i := 0; i <= contract.MaxDenyUsers; i++ {
				u, err := st.CreateUser(ctx, store.NewUser{Profile: store.ProfileUpdate{Name: "b", Age: 30, Gender: "man", Active: true}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.Block(ctx, u, owner); err != nil {
					t.Fatal(err)
				}
				last = u
			}
			path := fmt.Sprintf("/api/users/%d/profile", owner)
			r := a.do("GET", path, token(t, viewer), "")
			expect(t, r, 200, "profile with many blocks")
			if r.hdr.Get("Cache-Control") != "private, no-cache" || r.hdr.Get("Vary") != "Authorization" || r.hdr.Get(contract.DenyUsers) != "" {
				t.Fatalf("%d blocks: %v", contract.MaxDenyUsers+1, r.hdr)
			}
			expect(t, a.do("GET", path, token(t, last), ""), 404, "the last of many blockers")
		})
	}
}

// TestErrorsNeverStored: every error answer says no-store and carries no
// validator or tag, whoever wrote it: a handler's problem, the mux's 404
// and 405, the auth check, and http.ServeContent's 416 on a photo.
func TestErrorsNeverStored(t *testing.T) {
	st := memory.New()
	a := newPhotoAPI(t, st, origin.PhotoOptions{})
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	up := a.uploadRaw(token(t, me), testphotos.Read(t, "images", "portrait-hopper-512x600.jpg"), "image/jpeg")
	expect(t, up, 201, "upload")
	var ph uploaded
	up.json(t, &ph)
	for _, tc := range []struct {
		method, path, tok string
		hdr               []string
		code              int
	}{
		{"GET", ph.URL, "", []string{"Range", "bytes=99999999-"}, http.StatusRequestedRangeNotSatisfiable},
		{"GET", ph.URL, "", []string{"If-Match", `"other"`}, http.StatusPreconditionFailed},
		{"GET", "/api/users/999999/profile", token(t, me), nil, 404},
		{"GET", "/api/nope", "", nil, 404},
		{"DELETE", "/api/swipes", token(t, me), nil, 405},
		{"GET", "/api/matches", "", nil, 401},
		{"GET", "/api/matches/suggestions?limit=0", token(t, me), nil, 400},
	} {
		r := a.send(tc.method, tc.path, tc.tok, nil, tc.hdr...)
		if r.code != tc.code {
			t.Fatalf("%s %s %v: %d, want %d", tc.method, tc.path, tc.hdr, r.code, tc.code)
		}
		for _, k := range []string{"ETag", "Last-Modified", "Cache-Tags", contract.DenyUsers} {
			if v := r.hdr.Get(k); v != "" {
				t.Errorf("%s %s: %d with %s %q", tc.method, tc.path, r.code, k, v)
			}
		}
		if cc := r.hdr.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s %v: %d with Cache-Control %q, want no-store", tc.method, tc.path, tc.hdr, r.code, cc)
		}
	}
}

// TestUnsafeMethodsNeverRedirected: a write to a non-canonical path (//,
// /./, ..) is a 404 problem, never a redirect an edge could take for a
// successful write to the Location; safe methods are still redirected.
func TestUnsafeMethodsNeverRedirected(t *testing.T) {
	st := memory.New()
	a := newAPI(t, st)
	me := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	c := *a.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	send := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(`{"target_id":2,"direction":"like"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token(t, me))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "PURGE"} {
		for _, path := range []string{"/api//swipes", "//api/swipes", "/api/./swipes", "/api/x/../swipes", "/api/users/me/./location"} {
			res := send(method, path)
			if res.StatusCode != 404 || res.Header.Get("Location") != "" || res.Header.Get("Content-Type") != "application/problem+json" ||
				res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s: %d Location %q Content-Type %q", method, path, res.StatusCode, res.Header.Get("Location"), res.Header.Get("Content-Type"))
			}
		}
	}
	for _, method := range []string{"GET", "HEAD"} {
		if res := send(method, "/api//matches"); res.StatusCode/100 != 3 || res.Header.Get("Location") != "/api/matches" {
			t.Errorf("%s /api//matches: %d %q, want a redirect to the clean path", method, res.StatusCode, res.Header.Get("Location"))
		}
	}
	ms, _ := st.ListMatches(context.Background(), me)
	if len(ms) != 0 {
		t.Fatal("a write went through")
	}
}

// TestMetricsMethodLabel: the method label takes the API's methods or
// OTHER, so arbitrary method strings add no series.
func TestMetricsMethodLabel(t *testing.T) {
	a := newAPI(t, memory.New())
	for i, m := range []string{"FOO", "get", "BREW", "X-" + strconv.Itoa(time.Now().Nanosecond()), "PROPFIND", "GET", "OPTIONS"} {
		req, _ := http.NewRequest(m, fmt.Sprintf("%s/api/nope%d", a.srv.URL, i), nil)
		res, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	r := a.do("GET", "/metrics", "", "")
	var methods []string
	for _, line := range strings.Split(r.body, "\n") {
		if !strings.HasPrefix(line, "spark_origin_http_request_duration_seconds_count{") {
			continue
		}
		i := strings.Index(line, `method="`)
		m := line[i+len(`method="`):]
		methods = append(methods, m[:strings.IndexByte(m, '"')])
	}
	seen := map[string]bool{}
	for _, m := range methods {
		seen[m] = true
		switch m {
		case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER":
		default:
			t.Errorf("method label %q", m)
		}
	}
	if !seen["OTHER"] || !seen["GET"] || !seen["OPTIONS"] {
		t.Fatalf("method labels %v", methods)
	}
}
