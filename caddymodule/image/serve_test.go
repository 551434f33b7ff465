package image

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

func newServer(t *testing.T, limits imageproxy.Limits) *Server {
	t.Helper()
	proc, err := imageproxy.New(imageproxy.Config{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	up, err := NewDirUpstream(photoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	s := &Server{Proc: proc, Plan: imageproxy.DefaultPlan(), Upstream: up, StripPrefix: "/photos"}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServeVariant(t *testing.T) {
	s := newServer(t, imageproxy.Limits{})
	w := get(t, s, "GET", "/photos/wine-gps-2560x3837.jpg", contract.ImageVariant, "w200-q60-webp")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	h := w.Header()
	for k, want := range map[string]string{
		"Content-Type":        "image/webp",
		"Cache-Control":       DefaultCacheControl,
		"Vary":                contract.ImageVariant,
		"Accept-CH":           imageproxy.AcceptCH,
		contract.ImageVariant: "w200-q60-webp",
		"Cache-Tags":          "photo:wine-gps-2560x3837.jpg",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	etag := h.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || h.Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("etag %q, length %q/%d", etag, h.Get("Content-Length"), w.Body.Len())
	}
	if strings.Contains(w.Body.String(), "GPS") {
		t.Fatal("GPS in the body")
	}
	// Conditional and HEAD.
	if w := get(t, s, "GET", "/photos/wine-gps-2560x3837.jpg", contract.ImageVariant, "w200-q60-webp", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Fatalf("If-None-Match: %d", w.Code)
	}
	if w := get(t, s, "HEAD", "/photos/wine-gps-2560x3837.jpg", contract.ImageVariant, "w200-q60-webp"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Fatalf("HEAD: %d, %d bytes, etag %q", w.Code, w.Body.Len(), w.Header().Get("ETag"))
	}
}

// A variant carries the tag the origin purges its photo with: "photo:" and
// the upstream name (the path below /api/users), tag separators escaped.
func TestServeTagsVariantsAsTheOriginPurges(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "42", "photos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "42", "photos", "a b,c.jpg"), readPhoto(t, "portrait-hopper-512x600.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, imageproxy.Limits{})
	up, err := NewDirUpstream(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	s.Upstream, s.StripPrefix = up, "/api/users"
	w := get(t, s, "GET", "/api/users/42/photos/a%20b%2Cc.jpg")
	if got := w.Header().Get(contract.CacheTags); w.Code != 200 || got != "photo:42/photos/a%20b%2Cc.jpg" {
		t.Fatalf("status %d, Cache-Tags %q", w.Code, got)
	}
}

// Without the hints middleware (no valid header), the handler reads the
// hints itself and varies on them.
func TestServeWithoutHeaderVariesOnHints(t *testing.T) {
	s := newServer(t, imageproxy.Limits{})
	for _, hv := range []string{"", "w999-q60-jpeg", "garbage", "w200-q61-jpeg"} {
		w := get(t, s, "GET", "/photos/portrait-hopper-512x600.jpg?w=150", contract.ImageVariant, hv, "ECT", "2g", "Accept", "image/webp")
		if w.Code != 200 {
			t.Fatalf("%q: status %d", hv, w.Code)
		}
		if got := w.Header().Get(contract.ImageVariant); got != "w200-q60-webp" {
			t.Errorf("header %q: variant %s, want w200-q60-webp", hv, got)
		}
		if v := w.Header().Get("Vary"); !strings.Contains(v, "Save-Data") || !strings.Contains(v, "Accept") || strings.Contains(v, contract.ImageVariant) {
			t.Errorf("header %q: Vary %q", hv, v)
		}
	}
}

func TestServeErrors(t *testing.T) {
	s := newServer(t, imageproxy.Limits{MaxSourcePixels: 10_000_000})
	for _, tt := range []struct {
		method, target string
		code           int
	}{
		{"GET", "/photos/missing.jpg", 404},
		{"GET", "/other/wine-gps-2560x3837.jpg", 404},
		{"GET", "/photos/../LICENSES.md", 400},
		{"GET", "/photos/%2e%2e/%2e%2e/etc/passwd", 400},
		{"GET", "/photos//etc/passwd", 400},
		{"GET", "/photos/LICENSES.md", 415},
		{"GET", "/photos/bird-6028x3391-q80.jpg", 422}, // 20 MP over the 10 MP limit
		{"POST", "/photos/wine-gps-2560x3837.jpg", 405},
	} {
		w := get(t, s, tt.method, tt.target)
		if w.Code != tt.code {
			t.Errorf("%s %s: %d %q, want %d", tt.method, tt.target, w.Code, w.Body, tt.code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: error response cacheable", tt.target)
		}
	}
}

func TestServeBusyIs503WithRetryAfter(t *testing.T) {
	s := newServer(t, imageproxy.Limits{MaxConcurrent: 1, MaxQueue: 1})
	// Six requests at once for a slow variant (the 16 MP photo, 800 px):
	// one runs, one waits, the others must be refused at once.
	variant := "w800-q85-webp"
	if imageproxy.SupportsAVIF() {
		variant = "w800-q85-avif"
	}
	const n = 6
	start := make(chan struct{})
	codes := make(chan *httptest.ResponseRecorder, n)
	for range n {
		go func() {
			<-start
			codes <- get(t, s, "GET", "/photos/dandelions-5312x2988.jpg", contract.ImageVariant, variant)
		}()
	}
	close(start)
	busy := 0
	for range n {
		w := <-codes
		switch w.Code {
		case 200:
		case 503:
			busy++
			if w.Header().Get("Retry-After") != "2" || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("503 without Retry-After or with a cacheable Cache-Control: %v", w.Header())
			}
		default:
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
	}
	if busy == 0 {
		t.Fatal("no request refused with 503 while the slot and the queue were full")
	}
}

func TestHinterOverwritesAndRewritesVary(t *testing.T) {
	hn := &Hinter{Plan: imageproxy.DefaultPlan(), CriticalCH: true}
	if err := hn.Init(); err != nil {
		t.Fatal(err)
	}
	var seen string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get(contract.ImageVariant)
		w.Header().Set("Content-Type", "image/webp")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Add("Vary", contract.ImageVariant)
		w.Write([]byte("x"))
	})
	r := httptest.NewRequest("GET", "/photos/a.jpg", nil)
	r.Header.Set(contract.ImageVariant, "w100-q60-jpeg") // forged by the client
	r.Header.Set("ECT", "4g")
	r.Header.Set("Accept", "image/webp")
	rec := httptest.NewRecorder()
	next.ServeHTTP(hn.Apply(rec, r), r)
	if seen != "w800-q85-webp" {
		t.Fatalf("variant header %q, want w800-q85-webp (client value replaced)", seen)
	}
	// The placeholder's value is the same text, boxed once at Init.
	if got := hn.PlaceholderValue(seen); got != "w800-q85-webp" {
		t.Fatalf("placeholder value %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = hn.PlaceholderValue(seen) }); n != 0 {
		t.Fatalf("PlaceholderValue allocates %v times", n)
	}
	vary := rec.Header().Get("Vary")
	if strings.Contains(vary, contract.ImageVariant) || !strings.Contains(vary, "Accept-Encoding") || !strings.Contains(vary, "Sec-CH-Width") {
		t.Fatalf("outgoing Vary %q", vary)
	}
	if rec.Header().Get("Accept-CH") == "" || rec.Header().Get("Critical-CH") != "" {
		t.Fatalf("image response: Accept-CH %q, Critical-CH %q", rec.Header().Get("Accept-CH"), rec.Header().Get("Critical-CH"))
	}
	html := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
	})
	rec = httptest.NewRecorder()
	html.ServeHTTP(hn.Apply(rec, r), r)
	if rec.Header().Get("Critical-CH") != CriticalCH || rec.Header().Get("Accept-CH") == "" {
		t.Fatalf("html: %v", rec.Header())
	}
}

// The edge's own RTT measurement works on a real TCP connection.
func TestTCPRTT(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan time.Duration, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		got <- tcpRTT(c)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "ping\n")
	rtt := <-got
	if rtt <= 0 || rtt > time.Second {
		t.Fatalf("loopback RTT %v", rtt)
	}
	if tcpRTT(nil) != 0 || tcpRTT(fakeConn{}) != 0 {
		t.Fatal("non-TCP connections must give 0")
	}
}

type fakeConn struct{ net.Conn }
