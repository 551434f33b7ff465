package cache

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntegrationContractFieldsOnEveryPath: Cache-Tags, Spark-Deny-Users
// and Spark-Purge are for the edge. Whatever path a response takes through
// it (stored, passed through, refused, revalidated, an error, another
// method, a Range, an Upgrade, a 103), none of them reaches the client, and
// the Spark-Purge it carried is honoured.
func TestIntegrationContractFieldsOnEveryPath(t *testing.T) {
	// Requests are made as user 5 (shared responses say public): the deny
	// list every response carries names 99, or 5 on /p/denied.
	e := startEdge(t, withBasicAuth(defaultCacheBlock, "5"))
	get := func(p string, hdr ...string) *resp { return e.get(p, append(as("5"), hdr...)...) }
	do := func(method, p string) *resp { return e.do(method, p, as("5")...) }
	var failing atomic.Bool
	large := strings.Repeat("L", 100<<10) // over max_entry_size (64KiB)
	contract := func(h http.Header, r *http.Request) {
		h.Set("Cache-Tags", "leak:1 leak:2")
		h.Set("Spark-Deny-Users", "99")
		if r.URL.Path == "/p/denied" {
			h.Set("Spark-Deny-Users", "5 99")
		}
		h.Set("Spark-Purge", "victim")
	}
	e.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.URL.Path == "/victim" {
			h.Set("Cache-Control", "public, max-age=100")
			h.Set("Cache-Tags", "victim")
			_, _ = io.WriteString(w, "victim")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/p/hints") {
			h.Set("Link", "</a.css>; rel=preload")
			contract(h, r)
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
		}
		contract(h, r)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/p/nostore":
			h.Set("Cache-Control", "no-store")
		case "/p/private":
			h.Set("Cache-Control", "private, max-age=100")
		case "/p/large":
			h.Set("Cache-Control", "public, max-age=100")
			h.Set("Content-Length", strconv.Itoa(len(large)))
			_, _ = io.WriteString(w, large)
			return
		case "/p/large-stream":
			h.Set("Cache-Control", "public, max-age=100")
			for i := 0; i < len(large); i += 16 << 10 {
				_, _ = io.WriteString(w, large[i:min(i+16<<10, len(large))])
				w.(http.Flusher).Flush()
			}
			return
		case "/p/events":
			h.Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: x\n\n")
			return
		case "/p/range":
			h.Set("Cache-Control", "public, max-age=100")
			http.ServeContent(w, r, "", time.Now().Add(-time.Hour), strings.NewReader("0123456789"))
			return
		case "/p/reval", "/p/sie", "/p/304":
			// Stale on arrival (Age 30 > max-age 10), with a validator.
			h.Set("Cache-Control", "public, max-age=10, stale-if-error=600")
			h.Set("Age", "30")
			h.Set("ETag", `"r"`)
			if r.Header.Get("If-None-Match") == `"r"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		case "/p/upgrade":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"+
				"Cache-Tags: leak:1\r\nSpark-Deny-Users: 99\r\nSpark-Purge: victim\r\n\r\n")
			line, _ := brw.ReadString('\n')
			_, _ = io.WriteString(conn, "echo: "+line)
			return
		default:
			h.Set("Cache-Control", "public, max-age=100")
		}
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "body of "+r.URL.Path)
		}
	})
	primeVictim := func(t *testing.T) {
		t.Helper()
		get("/victim")
		if !get("/victim").isHit() {
			t.Fatal("victim not stored")
		}
	}
	cases := []struct {
		name  string
		setup func()
		do    func() *resp
	}{
		{"GET stored", nil, func() *resp { return get("/p/stored") }},
		{"GET refused by the stored deny list", func() { get("/p/denied") }, func() *resp { return get("/p/denied") }},
		{"GET not storable", nil, func() *resp { return get("/p/nostore") }},
		{"GET private", nil, func() *resp { return get("/p/private") }},
		{"HEAD miss", nil, func() *resp { return do("HEAD", "/p/head") }},
		{"Range", nil, func() *resp { return get("/p/range", "Range", "bytes=0-3") }},
		{"OPTIONS", nil, func() *resp { return do("OPTIONS", "/p/options") }},
		{"POST", nil, func() *resp { return e.doBody("POST", "/p/post", []byte("{}"), as("5")...) }},
		{"unknown method", nil, func() *resp { return do("PURGE", "/p/purge") }},
		{"too large by Content-Length", nil, func() *resp { return get("/p/large") }},
		{"too large while streaming", nil, func() *resp { return get("/p/large-stream") }},
		{"event stream", nil, func() *resp { return get("/p/events") }},
		{"generated ETag (held body)", nil, func() *resp { return get("/etag/p") }},
		{"origin 304 to the client's conditional", nil, func() *resp { return get("/p/304", "If-None-Match", `"r"`) }},
		{"revalidation 304", func() { get("/p/reval") }, func() *resp { return get("/p/reval") }},
		{"stale-if-error", func() { get("/p/sie") }, func() *resp {
			failing.Store(true)
			defer failing.Store(false)
			return get("/p/sie")
		}},
		{"origin error", nil, func() *resp {
			failing.Store(true)
			defer failing.Store(false)
			return get("/p/error")
		}},
		{"103 then the response", nil, func() *resp { return get("/p/hints") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			primeVictim(t)
			r := tc.do()
			t.Logf("%d, Cache-Status %q", r.status, r.cacheStatus())
			noContractFields(t, tc.name, r.header)
			if get("/victim").isHit() {
				t.Errorf("%s: Spark-Purge not honoured", tc.name)
			}
		})
	}

	t.Run("interim 103", func(t *testing.T) {
		var interim []textproto.MIMEHeader
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			interim = append(interim, h)
			return nil
		}}
		req, _ := http.NewRequest("GET", e.site+"/p/hints-interim", nil)
		req.Header.Set("Authorization", as("5")[1])
		e.send(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if len(interim) != 1 || interim[0].Get("Link") == "" {
			t.Fatalf("interim responses %v", interim)
		}
		noContractFields(t, "103", http.Header(interim[0]))
	})

	t.Run("Upgrade", func(t *testing.T) {
		primeVictim(t)
		res, line, err := e.upgradeEcho("/p/upgrade")
		if res.StatusCode != 101 {
			t.Fatalf("status %d", res.StatusCode)
		}
		noContractFields(t, "101", res.Header)
		if err != nil || line != "echo: ping\n" {
			t.Errorf("after the upgrade: %q %v", line, err)
		}
		if get("/victim").isHit() {
			t.Error("Spark-Purge on a 101 not honoured")
		}
	})
}
