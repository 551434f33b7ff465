package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	t0HTTP = t0.Format(http.TimeFormat)
)

func httpTime(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }

// basePolicy is a policy with nothing set.
func basePolicy() policy { return policy{swr: -1, sie: -1} }

func getReq(kv ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://spark.test/api/x", nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func TestDecideStore(t *testing.T) {
	const s = time.Second
	bearer := []string{"Authorization", "Bearer alice"}
	cookie := []string{"Cookie", "session=alice"}
	withTTL := func(p policy, d time.Duration) policy { p.ttl = d; return p }
	privatePol := basePolicy()
	privatePol.private = true
	cases := []struct {
		name    string
		method  string
		req     []string // request header pairs
		status  int
		resp    []string // response header pairs
		pol     policy
		ok      bool
		reason  string
		fresh   time.Duration
		perUser bool
		check   func(t *testing.T, d storeDecision)
	}{
		{name: "max-age", status: 200, resp: []string{"Cache-Control", "max-age=60"}, ok: true, fresh: 60 * s},
		{name: "s-maxage beats max-age", status: 200, resp: []string{"Cache-Control", "max-age=60, s-maxage=120"}, ok: true, fresh: 120 * s,
			check: func(t *testing.T, d storeDecision) {
				if !d.e.mustRevalidate || !d.e.authOK {
					t.Errorf("s-maxage: mustRevalidate=%v authOK=%v, want both", d.e.mustRevalidate, d.e.authOK)
				}
			}},
		{name: "Expires relative to Date", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(300 * s)}, ok: true, fresh: 300 * s},
		{name: "max-age beats Expires", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(300 * s), "Cache-Control", "max-age=5"}, ok: true, fresh: 5 * s},
		{name: "Expires in the past", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(-time.Hour)}, reason: "not-fresh"},
		{name: "invalid Expires is expired", status: 200, resp: []string{"Date", t0HTTP, "Expires", "0"}, reason: "not-fresh"},
		{name: "invalid Expires with validator stored stale", status: 200, resp: []string{"Expires", "0", "Etag", `"v1"`}, ok: true, fresh: 0},
		{name: "two Expires values is expired", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(time.Hour), "Expires", httpTime(2 * time.Hour), "Etag", `"x"`}, ok: true, fresh: 0},
		{name: "CDN-Cache-Control overrides Cache-Control", status: 200, resp: []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "max-age=600"}, ok: true, fresh: 600 * s},
		{name: "CDN-Cache-Control s-maxage first", status: 200, resp: []string{"Cdn-Cache-Control", "max-age=600, s-maxage=900"}, ok: true, fresh: 900 * s,
			check: func(t *testing.T, d storeDecision) {
				if d.e.mustRevalidate {
					t.Error("targeted s-maxage must not imply proxy-revalidate")
				}
			}},
		{name: "CDN-Cache-Control beats rule ttl", status: 200, resp: []string{"Cdn-Cache-Control", "max-age=600"}, pol: withTTL(basePolicy(), 30*s), ok: true, fresh: 600 * s},
		{name: "CDN-Cache-Control lets phones have no-cache", status: 200, resp: []string{"Cache-Control", "max-age=0", "Cdn-Cache-Control", "max-age=300"}, ok: true, fresh: 300 * s},
		{name: "rule ttl beats max-age", status: 200, resp: []string{"Cache-Control", "max-age=60"}, pol: withTTL(basePolicy(), time.Hour), ok: true, fresh: time.Hour},
		{name: "rule ttl beats s-maxage", status: 200, resp: []string{"Cache-Control", "s-maxage=60"}, pol: withTTL(basePolicy(), 10*s), ok: true, fresh: 10 * s},
		{name: "rule ttl beats Expires", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(300 * s)}, pol: withTTL(basePolicy(), 20*s), ok: true, fresh: 20 * s},
		{name: "rule ttl without any origin lifetime", status: 200, pol: withTTL(basePolicy(), 20*s), ok: true, fresh: 20 * s},
		{name: "no-store", status: 200, resp: []string{"Cache-Control", "no-store, max-age=60"}, reason: "no-store"},
		{name: "no-store never stored with a rule ttl", status: 200, resp: []string{"Cache-Control", "no-store"}, pol: withTTL(basePolicy(), time.Hour), reason: "no-store"},
		{name: "no-store never stored with rule ttl and private", req: bearer, status: 200, resp: []string{"Cache-Control", "private, no-store"}, pol: withTTL(privatePol, time.Hour), reason: "no-store"},
		{name: "no-store in Cache-Control holds against CDN-Cache-Control", status: 200, resp: []string{"Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=600"}, reason: "no-store"},
		{name: "no-store in CDN-Cache-Control", status: 200, resp: []string{"Cache-Control", "max-age=600", "Cdn-Cache-Control", "no-store"}, reason: "no-store"},
		{name: "request no-store", req: []string{"Cache-Control", "no-store"}, status: 200, resp: []string{"Cache-Control", "max-age=60"}, reason: "no-store"},
		{name: "private without rule", req: bearer, status: 200, resp: []string{"Cache-Control", "private, max-age=60"}, reason: "private"},
		{name: "private with rule but no credential", status: 200, resp: []string{"Cache-Control", "private, max-age=60"}, pol: privatePol, reason: "private"},
		{name: "private with rule and token", req: bearer, status: 200, resp: []string{"Cache-Control", "private, max-age=60"}, pol: privatePol, ok: true, fresh: 60 * s, perUser: true},
		{name: "private with rule and cookie", req: cookie, status: 200, resp: []string{"Cache-Control", "private, max-age=60"}, pol: privatePol, ok: true, fresh: 60 * s, perUser: true},
		{name: "private in Cache-Control holds against CDN-Cache-Control", req: bearer, status: 200, resp: []string{"Cache-Control", "private", "Cdn-Cache-Control", "max-age=60"}, reason: "private"},
		{name: "Vary Authorization is private", req: bearer, status: 200, resp: []string{"Cache-Control", "public, max-age=60", "Vary", "Authorization"}, reason: "private"},
		{name: "Vary Authorization with rule", req: bearer, status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", "Authorization"}, pol: privatePol, ok: true, fresh: 60 * s, perUser: true},
		{name: "Vary Cookie is private", req: cookie, status: 200, resp: []string{"Cache-Control", "public, max-age=60", "Vary", "Cookie"}, reason: "private"},
		{name: "authorized request, plain max-age: not shared", req: bearer, status: 200, resp: []string{"Cache-Control", "max-age=60"}, reason: "private"},
		{name: "authorized request, public: shared", req: bearer, status: 200, resp: []string{"Cache-Control", "public, max-age=60"}, ok: true, fresh: 60 * s,
			check: func(t *testing.T, d storeDecision) {
				if d.perUser || !d.e.authOK {
					t.Errorf("perUser=%v authOK=%v", d.perUser, d.e.authOK)
				}
			}},
		{name: "authorized request, s-maxage: shared", req: bearer, status: 200, resp: []string{"Cache-Control", "s-maxage=60"}, ok: true, fresh: 60 * s},
		{name: "authorized request, must-revalidate: shared", req: bearer, status: 200, resp: []string{"Cache-Control", "must-revalidate, max-age=60"}, ok: true, fresh: 60 * s},
		{name: "authorized request, rule private: per user", req: bearer, status: 200, resp: []string{"Cache-Control", "max-age=60"}, pol: privatePol, ok: true, fresh: 60 * s, perUser: true},
		{name: "Set-Cookie not shared", status: 200, resp: []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=1"}, reason: "private"},
		{name: "Set-Cookie not shared even with rule private but no credential", status: 200, resp: []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=1"}, pol: privatePol, reason: "private"},
		{name: "Set-Cookie per user with rule and credential", req: cookie, status: 200, resp: []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=1"}, pol: privatePol, ok: true, fresh: 60 * s, perUser: true},
		{name: "heuristic from Last-Modified", status: 200, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-50 * time.Hour)}, ok: true, fresh: 5 * time.Hour},
		{name: "heuristic capped at a day", status: 200, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-100 * 24 * time.Hour)}, ok: true, fresh: 24 * time.Hour},
		{name: "heuristic for 404", status: 404, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-10 * time.Hour)}, ok: true, fresh: time.Hour},
		{name: "no heuristic without Last-Modified", status: 200, resp: []string{"Date", t0HTTP}, reason: "not-fresh"},
		{name: "no heuristic for Last-Modified in the future", status: 200, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(time.Hour)}, ok: true, fresh: 0},
		{name: "no heuristic for 302", status: 302, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-10 * time.Hour)}, reason: "status"},
		{name: "no heuristic for 500", status: 500, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-10 * time.Hour)}, reason: "status"},
		{name: "500 with max-age never stored", status: 500, resp: []string{"Cache-Control", "max-age=60"}, reason: "status"},
		{name: "503 with rule ttl never stored", status: 503, pol: withTTL(basePolicy(), time.Hour), reason: "status"},
		{name: "302 with max-age", status: 302, resp: []string{"Cache-Control", "max-age=60"}, ok: true, fresh: 60 * s},
		{name: "307 with Expires", status: 307, resp: []string{"Date", t0HTTP, "Expires", httpTime(time.Minute)}, ok: true, fresh: time.Minute},
		{name: "301 by default with rule ttl", status: 301, pol: withTTL(basePolicy(), time.Minute), ok: true, fresh: time.Minute},
		{name: "206 never", status: 206, resp: []string{"Cache-Control", "max-age=60"}, reason: "status"},
		{name: "no-cache stored for revalidation", status: 200, resp: []string{"Cache-Control", "no-cache, max-age=60", "Etag", `"a"`}, ok: true, fresh: 0,
			check: func(t *testing.T, d storeDecision) {
				if !d.e.noCache {
					t.Error("noCache not set")
				}
			}},
		{name: "no-cache beats rule ttl", status: 200, resp: []string{"Cache-Control", "no-cache", "Etag", `"a"`}, pol: withTTL(basePolicy(), time.Hour), ok: true, fresh: 0},
		{name: "no-cache without validator", status: 200, resp: []string{"Cache-Control", "no-cache, max-age=60"}, reason: "not-fresh"},
		{name: "no-cache without validator but rule etag", status: 200, resp: []string{"Cache-Control", "no-cache"}, pol: policy{swr: -1, sie: -1, etag: true}, ok: true},
		{name: "max-age=0 with Last-Modified kept for revalidation", status: 200, resp: []string{"Cache-Control", "max-age=0", "Last-Modified", httpTime(-time.Hour)}, ok: true, fresh: 0},
		{name: "max-age=0 with swr kept", status: 200, resp: []string{"Cache-Control", "max-age=0, stale-while-revalidate=30"}, ok: true, fresh: 0},
		{name: "Vary star", status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", "Accept, *"}, reason: "vary-star"},
		{name: "too many Vary fields", status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", manyFields(maxVaryFields + 1)}, reason: "vary-too-long"},
		{name: "Vary at the limit", status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", manyFields(maxVaryFields)}, ok: true, fresh: 60 * s},
		{name: "rule vary merged and sorted", status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding, Origin"},
			pol: policy{swr: -1, sie: -1, vary: []string{"accept-encoding", "location"}}, ok: true, fresh: 60 * s,
			check: func(t *testing.T, d storeDecision) {
				if got := strings.Join(d.vary, ","); got != "accept-encoding,location,origin" {
					t.Errorf("vary %q", got)
				}
			}},
		{name: "rule vary past the limit", status: 200, resp: []string{"Cache-Control", "max-age=60", "Vary", manyFields(maxVaryFields)},
			pol: policy{swr: -1, sie: -1, vary: []string{"zzz"}}, reason: "vary-too-long"},
		{name: "HEAD not stored", method: http.MethodHead, status: 200, resp: []string{"Cache-Control", "max-age=60"}, reason: "method"},
		{name: "POST not stored", method: http.MethodPost, status: 200, resp: []string{"Cache-Control", "max-age=60"}, reason: "method"},
		{name: "event stream", status: 200, resp: []string{"Cache-Control", "max-age=60", "Content-Type", "text/event-stream; charset=utf-8"}, reason: "event-stream"},
		{name: "content range", status: 200, resp: []string{"Cache-Control", "max-age=60", "Content-Range", "bytes 0-1/2"}, reason: "range"},
		{name: "stale windows from response", status: 200, resp: []string{"Cache-Control", "max-age=1, stale-while-revalidate=7, stale-if-error=9"},
			pol: policy{swr: time.Minute, sie: time.Minute}, ok: true, fresh: s,
			check: func(t *testing.T, d storeDecision) {
				if d.e.swr != 7*s || d.e.sie != 9*s {
					t.Errorf("swr %v sie %v", d.e.swr, d.e.sie)
				}
			}},
		{name: "stale windows from rule", status: 200, resp: []string{"Cache-Control", "max-age=1"},
			pol: policy{swr: time.Minute, sie: 2 * time.Minute}, ok: true, fresh: s,
			check: func(t *testing.T, d storeDecision) {
				if d.e.swr != time.Minute || d.e.sie != 2*time.Minute {
					t.Errorf("swr %v sie %v", d.e.swr, d.e.sie)
				}
			}},
		{name: "overflowing max-age capped", status: 200, resp: []string{"Cache-Control", "max-age=99999999999999999999"}, ok: true, fresh: maxDelta * s},
		{name: "conflicting max-age takes smallest", status: 200, resp: []string{"Cache-Control", "max-age=600", "Cache-Control", "max-age=6"}, ok: true, fresh: 6 * s},
		{name: "must-revalidate flag", status: 200, resp: []string{"Cache-Control", "max-age=6, must-revalidate"}, ok: true, fresh: 6 * s,
			check: func(t *testing.T, d storeDecision) {
				if !d.e.mustRevalidate {
					t.Error("mustRevalidate not set")
				}
			}},
		{name: "proxy-revalidate flag", status: 200, resp: []string{"Cache-Control", "max-age=6, proxy-revalidate"}, ok: true, fresh: 6 * s,
			check: func(t *testing.T, d storeDecision) {
				if !d.e.mustRevalidate {
					t.Error("mustRevalidate not set")
				}
			}},

		// Issue 10: a policy's default stale windows apply only to responses
		// that were fresh when they arrived.
		{name: "default windows: no freshness, no validator (a /metrics)", status: 200, resp: []string{"Content-Type", "text/plain"},
			pol: defaultWindows, reason: "not-fresh"},
		{name: "default windows: max-age=0 without validator", status: 200, resp: []string{"Cache-Control", "max-age=0"},
			pol: defaultWindows, reason: "not-fresh"},
		{name: "default windows: Expires in the past without validator", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(-time.Minute)},
			pol: defaultWindows, reason: "not-fresh"},
		{name: "default windows: max-age=0 with validator kept for revalidation only", status: 200, resp: []string{"Cache-Control", "max-age=0", "Etag", `"v"`},
			pol: defaultWindows, ok: true, fresh: 0, check: noWindows},
		{name: "default windows: Expires in the past with validator", status: 200, resp: []string{"Date", t0HTTP, "Expires", httpTime(-time.Minute), "Last-Modified", httpTime(-time.Hour)},
			pol: defaultWindows, ok: true, fresh: 0, check: noWindows},
		{name: "default windows: no-cache", status: 200, resp: []string{"Cache-Control", "no-cache, max-age=60", "Etag", `"v"`},
			pol: defaultWindows, ok: true, fresh: 0, check: noWindows},
		{name: "default windows: stale on arrival", status: 200, resp: []string{"Cache-Control", "max-age=10", "Age", "30", "Etag", `"v"`},
			pol: defaultWindows, ok: true, fresh: 10 * s, check: noWindows},
		{name: "default windows: stale on arrival without validator", status: 200, resp: []string{"Cache-Control", "max-age=10", "Age", "30"},
			pol: defaultWindows, reason: "not-fresh"},
		{name: "default windows: fresh response gets them", status: 200, resp: []string{"Cache-Control", "max-age=10"},
			pol: defaultWindows, ok: true, fresh: 10 * s, check: func(t *testing.T, d storeDecision) {
				if d.e.swr != time.Minute || d.e.sie != time.Hour {
					t.Errorf("swr %v sie %v, want the defaults", d.e.swr, d.e.sie)
				}
			}},
		{name: "default windows: heuristically fresh gets them", status: 200, resp: []string{"Date", t0HTTP, "Last-Modified", httpTime(-10 * time.Hour)},
			pol: defaultWindows, ok: true, fresh: time.Hour, check: func(t *testing.T, d storeDecision) {
				if d.e.swr != time.Minute {
					t.Errorf("swr %v", d.e.swr)
				}
			}},
		{name: "default windows: rule ttl is a lifetime", status: 200, resp: []string{"Cache-Control", "max-age=0"},
			pol: func() policy { p := defaultWindows; p.ttl = time.Minute; return p }(), ok: true, fresh: time.Minute, check: func(t *testing.T, d storeDecision) {
				if d.e.swr != time.Minute {
					t.Errorf("swr %v", d.e.swr)
				}
			}},
		{name: "origin's own swr on max-age=0 holds", status: 200, resp: []string{"Cache-Control", "max-age=0, stale-while-revalidate=30"},
			pol: defaultWindows, ok: true, fresh: 0, check: func(t *testing.T, d storeDecision) {
				if d.e.swr != 30*s || d.e.sie != -1 {
					t.Errorf("swr %v sie %v", d.e.swr, d.e.sie)
				}
			}},
		{name: "origin's own stale-if-error on a stale response holds", status: 200, resp: []string{"Cache-Control", "max-age=10, stale-if-error=600", "Age", "30"},
			pol: defaultWindows, ok: true, fresh: 10 * s, check: func(t *testing.T, d storeDecision) {
				if d.e.sie != 600*s || d.e.swr != -1 {
					t.Errorf("swr %v sie %v", d.e.swr, d.e.sie)
				}
			}},

		// Issue 11: Expires parsed as strictly as RFC 9110 §5.6.7 says.
		{name: "Expires as IMF-fixdate", status: 200, resp: []string{"Date", t0HTTP, "Expires", "Wed, 25 Nov 2026 13:00:00 GMT"}, ok: true, fresh: time.Hour},
		{name: "Expires with a one-digit hour is expired", status: 200, resp: []string{"Date", t0HTTP, "Expires", "Thu, 26 Nov 2026 1:00:00 GMT"}, reason: "not-fresh"},
		{name: "Expires with a doubled space is expired", status: 200, resp: []string{"Date", t0HTTP, "Expires", "Thu, 26  Nov 2026 01:00:00 GMT"}, reason: "not-fresh"},
		{name: "Expires in RFC 850 form", status: 200, resp: []string{"Date", t0HTTP, "Expires", "Wednesday, 25-Nov-26 12:10:00 GMT"}, ok: true, fresh: 10 * time.Minute},
		{name: "Expires in asctime form", status: 200, resp: []string{"Date", t0HTTP, "Expires", "Wed Nov 25 12:10:00 2026"}, ok: true, fresh: 10 * time.Minute},

		// Who filled a shared entry.
		{name: "authorized fill is marked", req: bearer, status: 200, resp: []string{"Cache-Control", "public, max-age=60"}, ok: true, fresh: 60 * s,
			check: func(t *testing.T, d storeDecision) {
				if !d.e.authFill {
					t.Error("authFill not set")
				}
			}},
		{name: "cookie fill is not an authorized fill", req: cookie, status: 200, resp: []string{"Cache-Control", "public, max-age=60"}, ok: true, fresh: 60 * s,
			check: func(t *testing.T, d storeDecision) {
				if d.e.authFill {
					t.Error("authFill set")
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := getReq(tc.req...)
			if tc.method != "" {
				req.Method = tc.method
			}
			h := hdr(tc.resp...)
			pol := tc.pol
			if pol.swr == 0 && pol.sie == 0 && !pol.private && pol.ttl == 0 && !pol.etag && pol.vary == nil {
				pol = basePolicy()
			}
			d := decideStore(req, parseDirectives(req.Header["Cache-Control"]), tc.status, h, pol, t0, t0)
			if d.ok != tc.ok || d.reason != tc.reason {
				t.Fatalf("ok=%v reason=%q; want ok=%v reason=%q", d.ok, d.reason, tc.ok, tc.reason)
			}
			if !d.ok {
				return
			}
			if d.e.fresh != tc.fresh {
				t.Errorf("fresh %v, want %v", d.e.fresh, tc.fresh)
			}
			if d.perUser != tc.perUser {
				t.Errorf("perUser %v, want %v", d.perUser, tc.perUser)
			}
			if d.e.status != tc.status || !d.e.stored.Equal(t0) {
				t.Errorf("status %d stored %v", d.e.status, d.e.stored)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// defaultWindows is a policy with the repo Caddyfile's default stale
// windows (stale_while_revalidate 1m, stale_if_error 1h).
var defaultWindows = policy{swr: time.Minute, sie: time.Hour}

// noWindows checks that a decision got no stale window.
func noWindows(t *testing.T, d storeDecision) {
	t.Helper()
	if d.e.swr > 0 || d.e.sie > 0 {
		t.Errorf("swr %v sie %v, want none", d.e.swr, d.e.sie)
	}
}

func manyFields(n int) string {
	fs := make([]string, n)
	for i := range fs {
		fs[i] = "x-f" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return strings.Join(fs, ", ")
}

func TestCorrectedAge(t *testing.T) {
	cases := []struct {
		name            string
		resp            []string
		reqTime, respAt time.Time
		want            time.Duration
	}{
		{"nothing", nil, t0, t0, 0},
		{"response delay", nil, t0, t0.Add(2 * time.Second), 2 * time.Second},
		{"Age plus delay", []string{"Age", "10"}, t0, t0.Add(time.Second), 11 * time.Second},
		{"apparent age wins", []string{"Date", httpTime(-time.Minute), "Age", "5"}, t0, t0, time.Minute},
		{"Date in the future ignored", []string{"Date", httpTime(time.Hour)}, t0, t0, 0},
		{"invalid Age ignored", []string{"Age", "-3"}, t0, t0, 0},
		{"overflowing Age capped", []string{"Age", "999999999999999999999"}, t0, t0, maxDelta * time.Second},
		{"Age list: first member", []string{"Age", "7200, 0"}, t0, t0, 7200 * time.Second},
		{"Age lines: first line", []string{"Age", "60", "Age", "5"}, t0, t0, 60 * time.Second},
		{"Age list with invalid first member ignored", []string{"Age", "x, 60"}, t0, t0, 0},
	}
	for _, tc := range cases {
		if got := correctedAge(hdr(tc.resp...), tc.reqTime, tc.respAt); got != tc.want {
			t.Errorf("%s: correctedAge = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFreshnessLifetime(t *testing.T) {
	pol := basePolicy()
	pol.ttl = 42 * time.Second
	cases := []struct {
		name string
		resp []string
		pol  policy
		want time.Duration
	}{
		{"nothing", nil, basePolicy(), 0},
		{"rule only", nil, pol, 42 * time.Second},
		{"targeted max-age over rule", []string{"Cdn-Cache-Control", "max-age=7"}, pol, 7 * time.Second},
		{"targeted without lifetime falls to rule", []string{"Cdn-Cache-Control", "public"}, pol, 42 * time.Second},
		{"targeted without lifetime ignores Cache-Control", []string{"Cdn-Cache-Control", "public", "Cache-Control", "max-age=9"}, basePolicy(), 0},
		{"rule over Cache-Control", []string{"Cache-Control", "max-age=9"}, pol, 42 * time.Second},
		{"s-maxage over max-age", []string{"Cache-Control", "max-age=9, s-maxage=3"}, basePolicy(), 3 * time.Second},
		{"Expires without Date uses now", []string{"Expires", httpTime(time.Minute)}, basePolicy(), time.Minute},
		{"heuristic not with no-cache", []string{"Cache-Control", "no-cache", "Last-Modified", httpTime(-10 * time.Hour)}, basePolicy(), 0},
	}
	for _, tc := range cases {
		h := hdr(tc.resp...)
		cc, targeted := edgeDirectives(h)
		if got := freshnessLifetime(cc, targeted, h, 200, tc.pol, t0); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestUsable(t *testing.T) {
	const s = time.Second
	type ent struct {
		fresh, swr time.Duration
		mustReval  bool
		noCache    bool
	}
	cases := []struct {
		name string
		e    ent
		req  string // request Cache-Control
		age  time.Duration
		want usability
	}{
		{"fresh", ent{fresh: 60 * s, swr: -1}, "", 10 * s, useFresh},
		{"just expired", ent{fresh: 60 * s, swr: -1}, "", 60 * s, useRevalidate},
		{"stale", ent{fresh: 60 * s, swr: -1}, "", 70 * s, useRevalidate},
		{"entry no-cache", ent{fresh: 60 * s, swr: -1, noCache: true}, "", 0, useRevalidate},
		{"request no-cache", ent{fresh: 60 * s, swr: -1}, "no-cache", 0, useRevalidate},
		{"request max-age exceeded", ent{fresh: 60 * s, swr: -1}, "max-age=5", 10 * s, useRevalidate},
		{"request max-age ok", ent{fresh: 60 * s, swr: -1}, "max-age=15", 10 * s, useFresh},
		{"request max-age=0", ent{fresh: 60 * s, swr: -1}, "max-age=0", 1 * s, useRevalidate},
		{"min-fresh not met", ent{fresh: 60 * s, swr: -1}, "min-fresh=30", 40 * s, useRevalidate},
		{"min-fresh met", ent{fresh: 60 * s, swr: -1}, "min-fresh=30", 20 * s, useFresh},
		{"max-stale any", ent{fresh: 60 * s, swr: -1}, "max-stale", time.Hour, useFresh},
		{"max-stale within", ent{fresh: 60 * s, swr: -1}, "max-stale=30", 80 * s, useFresh},
		{"max-stale at bound", ent{fresh: 60 * s, swr: -1}, "max-stale=30", 90 * s, useFresh},
		{"max-stale beyond", ent{fresh: 60 * s, swr: -1}, "max-stale=30", 91 * s, useRevalidate},
		{"must-revalidate forbids max-stale", ent{fresh: 60 * s, swr: -1, mustReval: true}, "max-stale", 61 * s, useRevalidate},
		{"must-revalidate forbids swr", ent{fresh: 60 * s, swr: time.Hour, mustReval: true}, "", 61 * s, useRevalidate},
		{"must-revalidate fresh is fine", ent{fresh: 60 * s, swr: -1, mustReval: true}, "", 59 * s, useFresh},
		{"swr window", ent{fresh: 60 * s, swr: 30 * s}, "", 70 * s, useStale},
		{"swr window end", ent{fresh: 60 * s, swr: 30 * s}, "", 90 * s, useRevalidate},
		{"swr but request no-cache", ent{fresh: 60 * s, swr: 30 * s}, "no-cache", 70 * s, useRevalidate},
		{"swr but request max-age", ent{fresh: 60 * s, swr: 30 * s}, "max-age=10", 70 * s, useRevalidate},
		{"zero lifetime", ent{fresh: 0, swr: -1}, "", 0, useRevalidate},
	}
	for _, tc := range cases {
		e := &entry{fresh: tc.e.fresh, swr: tc.e.swr, sie: -1, mustRevalidate: tc.e.mustReval, noCache: tc.e.noCache}
		var vals []string
		if tc.req != "" {
			vals = []string{tc.req}
		}
		if got := usable(e, parseDirectives(vals), tc.age); got != tc.want {
			t.Errorf("%s: usable = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestStaleIfErrorOK(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name string
		e    entry
		age  time.Duration
		want bool
	}{
		{"within", entry{fresh: 10 * s, sie: 60 * s}, 30 * s, true},
		{"beyond", entry{fresh: 10 * s, sie: 60 * s}, 70 * s, false},
		{"none", entry{fresh: 10 * s, sie: -1}, 11 * s, false},
		{"must-revalidate", entry{fresh: 10 * s, sie: 60 * s, mustRevalidate: true}, 11 * s, false},
		{"no-cache", entry{fresh: 10 * s, sie: 60 * s, noCache: true}, 11 * s, false},
	}
	for _, tc := range cases {
		if got := tc.e.staleIfErrorOK(tc.age); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCurrentAge(t *testing.T) {
	e := &entry{stored: t0, age: 5 * time.Second}
	if got := e.currentAge(t0.Add(10 * time.Second)); got != 15*time.Second {
		t.Errorf("currentAge = %v", got)
	}
	// A clock that steps back never makes an entry younger than stored.
	if got := e.currentAge(t0.Add(-time.Hour)); got != 5*time.Second {
		t.Errorf("currentAge with clock skew = %v", got)
	}
}
