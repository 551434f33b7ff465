package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spark-edge/spark/imageproxy"
)

// Errors of the upstreams, beside imageproxy.ErrSourceTooLarge.
var (
	// ErrBadName: the request names no original, or one outside the
	// upstream (dot-dot segments, back-slashes, NUL, a URL).
	ErrBadName = errors.New("invalid image name")
	// ErrNotFound: the upstream has no such original.
	ErrNotFound = errors.New("original not found")
	// ErrUpstream: the upstream failed (network, 5xx, a redirect).
	ErrUpstream = errors.New("upstream failed")
)

// Upstream fetches originals. Names are relative slash-separated paths
// already checked by CleanName; an Upstream never fetches anything outside
// its configured directory or base URL.
type Upstream interface {
	Fetch(ctx context.Context, name string, maxBytes int64) ([]byte, error)
}

// CleanName turns a request path (after the configured prefix is removed)
// into an upstream name. It refuses, rather than repairs, anything that is
// not a plain relative path: "..", ".", empty segments are errors, and so
// are back-slashes, NUL and colons in the first segment (a scheme).
func CleanName(p string) (string, error) {
	name := strings.TrimPrefix(p, "/")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadName, p, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 1024:
		return bad("too long")
	case strings.ContainsAny(name, "\\\x00"):
		return bad("back-slash or NUL")
	}
	for i, seg := range strings.Split(name, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return bad("empty, . or .. segment")
		case i == 0 && strings.Contains(seg, ":"):
			return bad("looks like a URL")
		}
	}
	if path.Clean(name) != name {
		return bad("not clean")
	}
	return name, nil
}

// DirUpstream serves originals from a directory through os.Root, which also
// refuses symbolic links that lead outside it.
type DirUpstream struct {
	root *os.Root
}

// NewDirUpstream opens dir.
func NewDirUpstream(dir string) (*DirUpstream, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("image upstream directory: %w", err)
	}
	return &DirUpstream{root: r}, nil
}

// Close releases the directory.
func (d *DirUpstream) Close() error { return d.root.Close() }

// Fetch reads the original name, at most maxBytes of it.
func (d *DirUpstream) Fetch(ctx context.Context, name string, maxBytes int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fetch %s: %w", name, ErrNotFound)
		}
		// os.Root's escape errors, permission errors: not a file we serve.
		return nil, fmt.Errorf("fetch %s: %w: %v", name, ErrBadName, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w: %v", name, ErrUpstream, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("fetch %s: %w", name, ErrNotFound)
	}
	if st.Size() > maxBytes {
		return nil, fmt.Errorf("fetch %s: %w: %d bytes, limit %d", name, imageproxy.ErrSourceTooLarge, st.Size(), maxBytes)
	}
	return readLimited(f, name, maxBytes)
}

func readLimited(r io.Reader, name string, maxBytes int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w: %v", name, ErrUpstream, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("fetch %s: %w: over %d bytes", name, imageproxy.ErrSourceTooLarge, maxBytes)
	}
	return b, nil
}

// HTTPUpstream fetches originals with GET from base URL + name: the origin
// (e.g. http://127.0.0.1:8081/api/users/) or an object store. The host
// always comes from the configuration; redirects are not followed.
type HTTPUpstream struct {
	base   *url.URL
	client *http.Client
}

// NewHTTPUpstream checks base (http or https, a host, no query, user or
// fragment) and returns an upstream with the given per-fetch timeout.
func NewHTTPUpstream(base string, timeout time.Duration) (*HTTPUpstream, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("image upstream %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("image upstream %q: want http(s)://host[:port][/path] without user, query or fragment", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return &HTTPUpstream{
		base: u,
		client: &http.Client{
			Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// URL returns the address an original is fetched from.
func (h *HTTPUpstream) URL(name string) string {
	u := *h.base
	u.Path = h.base.Path + name
	return u.String()
}

// Fetch GETs the original.
func (h *HTTPUpstream) Fetch(ctx context.Context, name string, maxBytes int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL(name), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w: %v", name, ErrBadName, err)
	}
	req.Header.Set("Accept", "image/jpeg, image/png, image/webp, image/heic, image/avif")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w: %v", name, ErrUpstream, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, fmt.Errorf("fetch %s: %w (upstream %d)", name, ErrNotFound, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch %s: %w: status %d", name, ErrUpstream, resp.StatusCode)
	case resp.ContentLength > maxBytes:
		return nil, fmt.Errorf("fetch %s: %w: %d bytes, limit %d", name, imageproxy.ErrSourceTooLarge, resp.ContentLength, maxBytes)
	}
	return readLimited(resp.Body, name, maxBytes)
}

// Interface guards
var (
	_ Upstream = (*DirUpstream)(nil)
	_ Upstream = (*HTTPUpstream)(nil)
)
