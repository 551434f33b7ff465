package cache

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
)

// Refresh after a write: the origin names, in Spark-Refresh on a write's
// 2xx response, the writer's own per-user answers the write changed (its
// inbox after a sent message, its own profile after an edit). Once the
// write's purge is applied, the edge fetches each of them again in the
// background with the writer's request, credential included, and stores it
// as any fill, so the writer's next read of it is a hit. The answers are
// the writer's own, fetched with the writer's token: nobody else's entry is
// touched, and each is keyed by the writer's credential as a read of the
// writer's would be.

// refreshPaths reads a Spark-Refresh field: the origin-relative paths (a
// query allowed) of its comma-separated values, at most
// contract.MaxRefreshPaths; anything else (absolute or scheme-relative
// URLs, fragments, control characters) is left out.
func refreshPaths(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "#\\") || hasControl(p) {
				continue
			}
			if len(out) == contract.MaxRefreshPaths {
				return out
			}
			out = append(out, p)
		}
	}
	return out
}

// hasControl reports a byte below space or DEL in s.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// refreshAfterWrite fetches paths again, off the request path, as GETs
// made from the write's request: its headers but the write's own
// (Content-Type, conditionals), its credential (so the entries land under
// the writer's key: keyed by the verified user when the write's request
// had one). Nothing happens for a request without a credential. A path
// something already holds is not fetched. The fetches go through the
// handlers after the cache on the write's route (the origin's reverse
// proxy in the repository's Caddyfile), with the path's own cache policy.
func (x *exchange) refreshAfterWrite(paths []string) {
	cred := x.credential()
	if cred == "" {
		return
	}
	c := x.c
	for _, p := range paths {
		u, err := url.ParseRequestURI(p)
		if err != nil {
			continue
		}
		r := c.bg(x.r)
		r.Method = http.MethodGet
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		r.RequestURI = u.RequestURI()
		r.Body, r.ContentLength, r.GetBody = http.NoBody, 0, nil
		for _, f := range [...]string{"Content-Type", "Content-Length", "Content-Encoding", "If-Match", "If-None-Match",
			"If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range", "Cache-Control", "Pragma", "Expect"} {
			r.Header.Del(f)
		}
		bg := &exchange{c: c, w: &discardWriter{h: make(http.Header)}, r: r, next: x.next,
			cred: cred, credDone: true, background: true}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ctx, cancel := c.backgroundContext(bg.r.Context())
			defer cancel()
			bg.r = bg.r.WithContext(ctx)
			if err := bg.prepare(); err != nil {
				return
			}
			bg.setKey()
			bg.fillsSeen = c.flight.endedFills()
			if e, _ := bg.lookup(); e != nil {
				return
			}
			c.metrics.refreshAfterWrite()
			_ = bg.fetchCoalesced()
		}()
	}
}
