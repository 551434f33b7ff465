package origin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/internal/testphotos"
	"github.com/spark-edge/spark/internal/testutil"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

type photoAPI struct {
	*api
	dir    string
	server *origin.Server
}

func newPhotoAPI(t *testing.T, st store.Store, o origin.PhotoOptions) *photoAPI {
	t.Helper()
	auth, err := origin.NewAuthenticator(testSecret, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ps, err := origin.NewDirPhotoStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	if o.Storage == nil { // else the test's own storage (dir goes unused)
		o.Storage = ps
	}
	s, err := origin.NewServer(origin.ServerOptions{Store: st, StoreName: "test", Auth: auth, Photos: o})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &photoAPI{api: &api{t: t, srv: hs, st: st}, dir: dir, server: s}
}

func (a *photoAPI) uploadRaw(tok string, photo []byte, contentType string) resp {
	a.t.Helper()
	return a.send("POST", "/api/users/me/photos", tok, photo, "Content-Type", contentType)
}

func (a *photoAPI) uploadMultipart(tok, field, filename string, photo []byte) resp {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("caption", "ignored"); err != nil {
		a.t.Fatal(err)
	}
	w, err := mw.CreateFormFile(field, filename)
	if err != nil {
		a.t.Fatal(err)
	}
	_, _ = w.Write(photo)
	if err := mw.Close(); err != nil {
		a.t.Fatal(err)
	}
	return a.send("POST", "/api/users/me/photos", tok, buf.Bytes(), "Content-Type", mw.FormDataContentType())
}

type uploaded struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	ContentType string   `json:"content_type"`
	Width       int      `json:"width"`
	Height      int      `json:"height"`
	Bytes       int      `json:"bytes"`
	Photos      []string `json:"photos"`
}

var photoNameRE = regexp.MustCompile(`^[0-9a-f]{32}\.(jpg|png)$`)

func problemCode(t *testing.T, r resp) string {
	t.Helper()
	var p origin.Problem
	r.json(t, &p)
	return strings.TrimPrefix(p.Type, "/problems/")
}

func TestPhotos(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("UploadServeDelete", func(t *testing.T) { testPhotoLifecycle(t, mk(t)) })
			t.Run("Limits", func(t *testing.T) { testPhotoLimits(t, mk(t)) })
			t.Run("ConcurrentUploads", func(t *testing.T) { testConcurrentUploads(t, mk(t)) })
		})
	}
}

func testPhotoLifecycle(t *testing.T, st store.Store) {
	a := newPhotoAPI(t, st, origin.PhotoOptions{MaxPhotos: 4})
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	other := mkUser(t, st, "bob", 31, "man", 48.85, 2.35, nil)
	tok := token(t, me)

	// Raw body: the GPS photo comes back without GPS, capped, upright.
	gps := testphotos.Read(t, "images", "wine-gps-2560x3837.jpg")
	r := a.uploadRaw(tok, gps, "image/jpeg")
	expect(t, r, 201, "raw upload")
	var up uploaded
	r.json(t, &up)
	wantPath := fmt.Sprintf("/api/users/%d/photos/%s", me, up.ID)
	if !photoNameRE.MatchString(up.ID) || !strings.HasSuffix(up.ID, ".jpg") || up.URL != wantPath || r.hdr.Get("Location") != wantPath {
		t.Fatalf("upload answer %+v, Location %q", up, r.hdr.Get("Location"))
	}
	if up.Width != 1366 || up.Height != imageproxy.DefaultOriginalSide || up.ContentType != "image/jpeg" {
		t.Fatalf("normalised size %dx%d %s, want 1366x2048 JPEG", up.Width, up.Height, up.ContentType)
	}
	if got, want := r.hdr.Get(contract.SparkPurge), fmt.Sprintf("user:%d profile:%d", me, me); got != want {
		t.Fatalf("upload Spark-Purge %q, want %q", got, want)
	}
	if cc := r.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("upload answer Cache-Control %q", cc)
	}

	// The original, without credentials, as the edge fetches it.
	g := a.send("GET", up.URL, "", nil)
	expect(t, g, 200, "get original")
	body := []byte(g.body)
	if bytes.Contains(body, []byte("GPS")) || bytes.Contains(body, []byte("Exif")) {
		t.Fatal("the stored original keeps EXIF/GPS")
	}
	info, err := imageproxy.Inspect(body)
	if err != nil || info.Type != imageproxy.SourceJPEG || info.Width != up.Width || info.Height != up.Height || info.Orientation > 1 {
		t.Fatalf("stored original %+v, %v", info, err)
	}
	etag := g.hdr.Get("ETag")
	for k, want := range map[string]string{
		"Cache-Control":          origin.PhotoCacheControl,
		"Content-Type":           "image/jpeg",
		"Cache-Tags":             origin.PhotoTag(me, up.ID),
		"X-Content-Type-Options": "nosniff",
		"ETag":                   `"` + up.ID + `"`,
	} {
		if got := g.hdr.Get(k); got != want {
			t.Errorf("original %s: %q, want %q", k, got, want)
		}
	}
	if nm := a.send("GET", up.URL, "", nil, "If-None-Match", etag); nm.code != 304 || nm.body != "" {
		t.Fatalf("conditional GET: %d %q", nm.code, nm.body)
	}
	if h := a.send("HEAD", up.URL, "", nil); h.code != 200 || h.body != "" || h.hdr.Get("ETag") != etag {
		t.Fatalf("HEAD: %d, %d bytes", h.code, len(h.body))
	}

	// Multipart: the orientation-6 photo is stored upright, no orientation tag.
	r = a.uploadMultipart(tok, "photo", "dogs.jpg", testphotos.Read(t, "images", "dogs-exif-orient6-3088x2048.jpg"))
	expect(t, r, 201, "multipart upload")
	var dogs uploaded
	r.json(t, &dogs)
	g = a.send("GET", dogs.URL, "", nil)
	expect(t, g, 200, "get rotated original")
	info, err = imageproxy.Inspect([]byte(g.body))
	if err != nil || info.Width >= info.Height || info.Height != imageproxy.DefaultOriginalSide || info.Orientation > 1 {
		t.Fatalf("orientation-6 photo stored as %+v (%v): want upright portrait without orientation", info, err)
	}

	// A PNG with alpha stays PNG; the file part may have any field name.
	r = a.uploadMultipart(tok, "file", "astronaut.png", testphotos.Read(t, "images", "portrait-astronaut-alpha-512x512.png"))
	expect(t, r, 201, "PNG upload")
	var png uploaded
	r.json(t, &png)
	if !strings.HasSuffix(png.ID, ".png") || png.ContentType != "image/png" || png.Width != 512 {
		t.Fatalf("alpha PNG stored as %+v", png)
	}
	if g := a.send("GET", png.URL, "", nil); g.code != 200 || g.hdr.Get("Content-Type") != "image/png" {
		t.Fatalf("PNG original: %d %s", g.code, g.hdr.Get("Content-Type"))
	}

	// The profile lists the uploads only (the photo URL mkUser stored, on
	// another host, is never sent); sending it back unchanged keeps them.
	p := a.do("GET", fmt.Sprintf("/api/users/%d/profile", me), token(t, other), "")
	expect(t, p, 200, "profile")
	var prof struct {
		Name   string   `json:"name"`
		Age    int      `json:"age"`
		Gender string   `json:"gender"`
		Photos []string `json:"photos"`
	}
	p.json(t, &prof)
	want := []string{up.URL, dogs.URL, png.URL}
	if fmt.Sprint(prof.Photos) != fmt.Sprint(want) {
		t.Fatalf("profile photos %v, want %v", prof.Photos, want)
	}
	put := fmt.Sprintf(`{"name":"Ana","age":30,"gender":"woman","bio":"","photos":["%s","%s","%s"]}`, up.URL, dogs.URL, png.URL)
	pr := a.do("PUT", "/api/users/me/profile", tok, put)
	expect(t, pr, 200, "profile round trip")
	pr.json(t, &prof)
	if fmt.Sprint(prof.Photos) != fmt.Sprint(want) {
		t.Fatalf("after PUT: photos %v, want %v", prof.Photos, want)
	}
	// Only one's own photos: another host, another user's upload, a path
	// that merely looks like one are all refused, and change nothing.
	for _, bad := range []string{"https://img.example/new", "http://evil.example" + up.URL, "//evil.example" + up.URL,
		fmt.Sprintf("/api/users/%d/photos/%s", other, up.ID), up.URL + "?x=1", up.URL + "/../../../x.jpg"} {
		r := a.do("PUT", "/api/users/me/profile", tok, fmt.Sprintf(`{"name":"Ana","age":30,"gender":"woman","photos":[%q]}`, bad))
		expect(t, r, 400, "foreign photo "+bad)
	}
	if r := a.do("GET", "/api/users/me/profile", tok, ""); !strings.Contains(r.body, up.URL) || strings.Contains(r.body, "example") {
		t.Fatalf("profile after refused updates: %s", r.body)
	}

	// Someone else cannot delete it; the owner can, once; every edge purges
	// the photo's variants (the tag spark_image puts on them) and the profile.
	if r := a.send("DELETE", "/api/users/me/photos/"+up.ID, token(t, other), nil); r.code != 404 {
		t.Fatalf("another user's DELETE: %d", r.code)
	}
	d := a.send("DELETE", "/api/users/me/photos/"+up.ID, tok, nil)
	expect(t, d, 204, "delete")
	wantPurge := fmt.Sprintf("photo:%d/photos/%s user:%d profile:%d", me, up.ID, me, me)
	if got := d.hdr.Get(contract.SparkPurge); got != wantPurge {
		t.Fatalf("DELETE Spark-Purge %q, want %q", got, wantPurge)
	}
	expect(t, a.send("GET", up.URL, "", nil), 404, "deleted original")
	expect(t, a.send("DELETE", "/api/users/me/photos/"+up.ID, tok, nil), 404, "second delete")
	if _, err := os.Stat(filepath.Join(a.dir, fmt.Sprint(me), up.ID)); !os.IsNotExist(err) {
		t.Fatalf("deleted file still there: %v", err)
	}
	pf, err := st.GetProfile(context.Background(), me)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pf.Uploads) != fmt.Sprint([]string{dogs.ID, png.ID}) {
		t.Fatalf("stored uploads after delete: %v", pf.Uploads)
	}

	// Names are validated: nothing else reaches the directory.
	if err := os.WriteFile(filepath.Join(a.dir, "secret.txt"), []byte("TOP-SECRET-CONTENT"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		fmt.Sprintf("/api/users/%d/photos/..%%2fsecret.txt", me),
		fmt.Sprintf("/api/users/%d/photos/%%2e%%2e%%2f%%2e%%2e%%2fsecret.txt", me),
		fmt.Sprintf("/api/users/%d/photos/abc.jpg", me),
		fmt.Sprintf("/api/users/%d/photos/%s", other, dogs.ID),
		"/api/users/0/photos/" + dogs.ID,
		"/api/users/me/photos/" + dogs.ID,
		"/api/users/-1/photos/" + dogs.ID,
		fmt.Sprintf("/api/users/%d/photos/%s", me, strings.ToUpper(dogs.ID)),
		fmt.Sprintf("/api/users/%d/photos/%s.tmp", me, dogs.ID),
	} {
		r := a.send("GET", path, "", nil)
		if r.code != 404 || strings.Contains(r.body, "TOP-SECRET") {
			t.Errorf("GET %s: %d %q, want 404", path, r.code, r.body)
		}
	}
	expect(t, a.send("DELETE", "/api/users/me/photos/..%2fsecret.txt", tok, nil), 404, "DELETE with a bad name")
	expect(t, a.uploadRaw("", gps, "image/jpeg"), 401, "anonymous upload")
}

func testPhotoLimits(t *testing.T, st store.Store) {
	a := newPhotoAPI(t, st, origin.PhotoOptions{MaxPhotos: 2, MaxBytes: 1 << 20})
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	tok := token(t, me)
	hopper := testphotos.Read(t, "images", "portrait-hopper-512x600.jpg")
	wine := testphotos.Read(t, "images", "wine-gps-2560x3837.jpg") // 525 KB
	big := testphotos.Read(t, "images", "bird-6028x3391-q80.jpg")  // 1.7 MB

	// Bytes: 413 from Content-Length, and from the stream when chunked.
	r := a.uploadRaw(tok, big, "image/jpeg")
	expect(t, r, 413, "oversized raw upload")
	if problemCode(t, r) != "photo-too-large" {
		t.Fatalf("oversized: %s", r.body)
	}
	req, _ := http.NewRequest("POST", a.srv.URL+"/api/users/me/photos", io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = -1
	res, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked oversized upload: %d", res.StatusCode)
	}
	expect(t, a.uploadMultipart(tok, "photo", "big.jpg", big), 413, "oversized multipart upload")

	// Bombs are refused from the header, fast.
	for _, b := range []struct {
		name string
		code int
	}{
		{"bomb-png-30000x30000-1bit.png", 422},
		{"bomb-webp-16383x16383-lossless.webp", 422},
		{"bomb-png-30000x30000-truncated.png", 422},
		{"bomb-jpeg-30000x30000-truncated.jpg", 422},
	} {
		start := time.Now()
		r := a.uploadRaw(tok, testphotos.Read(t, "bombs", b.name), "application/octet-stream")
		expect(t, r, b.code, b.name)
		// Refused from the header: a round trip on loopback. Decoding a
		// 30000×30000 bomb takes seconds; the bound leaves room for a
		// loaded machine's stalls and is still far below a decode.
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s refused after %v: decoded?", b.name, took)
		}
	}
	if r := a.uploadRaw(tok, testphotos.Read(t, "bombs", "bomb-png-30000x30000-1bit.png"), "image/png"); problemCode(t, r) != "image-too-large" {
		t.Fatalf("pixel bomb: %s", r.body)
	}

	// Formats: only JPEG, PNG, WebP, HEIF; corrupt ones are 422.
	r = a.uploadRaw(tok, []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "image/gif")
	expect(t, r, 415, "GIF")
	r = a.uploadRaw(tok, []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), "image/svg+xml")
	expect(t, r, 415, "SVG")
	expect(t, a.uploadRaw(tok, hopper, "application/json"), 415, "JSON content type")
	r = a.uploadRaw(tok, wine[:len(wine)/2], "image/jpeg")
	expect(t, r, 422, "truncated JPEG")
	if problemCode(t, r) != "corrupt-image" {
		t.Fatalf("truncated: %s", r.body)
	}
	expect(t, a.uploadRaw(tok, nil, "image/jpeg"), 400, "empty body")
	expect(t, a.send("POST", "/api/users/me/photos", tok, []byte("--x\r\n\r\nno file\r\n--x--\r\n"),
		"Content-Type", "multipart/form-data; boundary=x"), 400, "multipart without a file")

	// Count: the third upload is refused, a delete frees a slot.
	var first uploaded
	for i, photo := range [][]byte{hopper, wine} {
		r := a.uploadRaw(tok, photo, "image/jpeg")
		expect(t, r, 201, fmt.Sprint("upload ", i))
		if i == 0 {
			r.json(t, &first)
		}
	}
	r = a.uploadRaw(tok, hopper, "image/jpeg")
	expect(t, r, 409, "upload over the limit")
	if problemCode(t, r) != "photo-limit" {
		t.Fatalf("over the limit: %s", r.body)
	}
	expect(t, a.send("DELETE", "/api/users/me/photos/"+first.ID, tok, nil), 204, "delete")
	expect(t, a.uploadRaw(tok, hopper, "image/jpeg"), 201, "upload after a delete")
	entries, err := os.ReadDir(filepath.Join(a.dir, fmt.Sprint(me)))
	if err != nil || len(entries) != 2 {
		t.Fatalf("files on disk: %v %v, want 2", entries, err)
	}
}

// Concurrent uploads past the limit: the store's atomic check refuses the
// extra ones and their files are removed.
func testConcurrentUploads(t *testing.T, st store.Store) {
	a := newPhotoAPI(t, st, origin.PhotoOptions{MaxPhotos: 2})
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	tok := token(t, me)
	hopper := testphotos.Read(t, "images", "portrait-hopper-512x600.jpg")
	const n = 6
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", a.srv.URL+"/api/users/me/photos", bytes.NewReader(hopper))
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := a.srv.Client().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		switch c {
		case 201:
			created++
		case 409, 503:
		default:
			t.Errorf("concurrent upload: status %d", c)
		}
	}
	entries, err := os.ReadDir(filepath.Join(a.dir, fmt.Sprint(me)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.GetProfile(context.Background(), me)
	if err != nil {
		t.Fatal(err)
	}
	if created != 2 || len(p.Uploads) != 2 || len(entries) != 2 {
		t.Fatalf("%d created, %d stored, %d files; want 2 each", created, len(p.Uploads), len(entries))
	}
}

// The tag the origin purges is the one spark_image puts on variants: with
// strip_prefix /api/users, the name of /api/users/42/photos/<name> is
// 42/photos/<name> and its tag "photo:" + that name (both sides build it
// with contract.PhotoTag; the edge end-to-end test checks the two against
// each other through a real edge).
func TestPhotoTagMatchesEdgeName(t *testing.T) {
	name, err := origin.NewPhotoName("jpg")
	if err != nil {
		t.Fatal(err)
	}
	if !origin.ValidPhotoName(name) || strings.ContainsAny(name, " ,/") {
		t.Fatalf("name %q", name)
	}
	path := origin.PhotoPath(42, name)
	if path != "/api/users/42/photos/"+name {
		t.Fatalf("path %q", path)
	}
	if got, want := origin.PhotoTag(42, name), "photo:"+strings.TrimPrefix(path, "/api/users/"); got != want || got != "photo:42/photos/"+name {
		t.Fatalf("tag %q, want %q", got, want)
	}
	for _, bad := range []string{"", "x.jpg", "../" + name, name + "/", strings.TrimSuffix(name, ".jpg") + ".gif", strings.ToUpper(name)} {
		if origin.ValidPhotoName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// slowReader hands out its bytes in chunks with a pause before each.
type slowReader struct {
	b     []byte
	chunk int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p[:min(len(p), s.chunk)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// An upload streamed at a slow phone's pace outlives the server's read
// timeout: the upload route extends its connection's deadlines.
func TestSlowUploadOutlivesReadTimeout(t *testing.T) {
	st := memory.New()
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	auth, err := origin.NewAuthenticator(testSecret, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := origin.NewDirPhotoStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := origin.NewServer(origin.ServerOptions{Store: st, Auth: auth, Photos: origin.PhotoOptions{Storage: ps}})
	if err != nil {
		t.Fatal(err)
	}
	// The read timeout also bounds the time from the start of the request
	// to the upload route extending the deadlines: 1 s leaves a loaded
	// machine room for that (300 ms was tight), and the body still takes
	// over twice as long (8 chunks, each after a 300 ms pause).
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ReadTimeout = time.Second
	hs.Config.WriteTimeout = time.Second
	hs.Start()
	t.Cleanup(hs.Close)
	photo := testphotos.Read(t, "images", "portrait-hopper-512x600.jpg")
	body := &slowReader{b: photo, chunk: len(photo)/8 + 1, pause: 300 * time.Millisecond}
	req, _ := http.NewRequest("POST", hs.URL+"/api/users/me/photos", body)
	req.Header.Set("Authorization", "Bearer "+token(t, me))
	req.Header.Set("Content-Type", "image/jpeg")
	res, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("slow upload: %d", res.StatusCode)
	}
}

// Uploads in flight are bounded (their bodies are held in memory): the one
// over the bound gets 503 with Retry-After at once.
func TestUploadsInFlightBounded(t *testing.T) {
	st := memory.New()
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	a := newPhotoAPI(t, st, origin.PhotoOptions{MaxInFlight: 1, MaxPhotos: 10000})
	tok := token(t, me)
	pr, pw := io.Pipe()
	// Ends the first upload if the test stops early (runs before the
	// server's cleanup, which would otherwise wait out the upload timeout).
	t.Cleanup(func() { _ = pw.CloseWithError(errors.New("test ended")) })
	started := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", a.srv.URL+"/api/users/me/photos", pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := a.srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	photo := testphotos.Read(t, "images", "portrait-hopper-512x600.jpg")
	go func() {
		_, _ = pw.Write(photo[:1000]) // the first upload is now being received
		close(started)
	}()
	<-started
	// Wait until the first upload holds its slot (on a loaded machine the
	// server may take a while to start handling it); an upload sent before
	// then could take the slot itself and have the first one refused.
	inFlight := a.server.Metrics().UploadsInFlight
	testutil.Eventually(t, 30*time.Second, "the first upload to start", func() bool {
		select {
		case c := <-done:
			t.Fatalf("the first upload ended early: %d", c)
		default:
		}
		return promtest.ToFloat64(inFlight) >= 1
	})
	r := a.uploadRaw(tok, photo, "image/jpeg")
	expect(t, r, 503, "upload beyond the in-flight bound")
	if r.hdr.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	_, _ = pw.Write(photo[1000:])
	pw.Close()
	if c := <-done; c != 201 {
		t.Fatalf("the first upload: %d", c)
	}
	expect(t, a.uploadRaw(tok, photo, "image/jpeg"), 201, "upload once the slot is free")
}

// fullDisk is a photo storage whose file system has no room left: Put fails
// as a write on a full disk does (nothing else of it is used).
type fullDisk struct{ origin.PhotoStorage }

func (fullDisk) Put(context.Context, int64, string, []byte) error {
	return fmt.Errorf("put photo: %w", &os.PathError{Op: "write", Path: "1/x.jpg.tmp", Err: syscall.ENOSPC})
}

// An upload to a full photo disk is refused with 507 and Retry-After, and
// the profile does not list it (the chaos drill does this on a real full
// tmpfs).
func TestUploadToFullDiskIs507(t *testing.T) {
	st := memory.New()
	me := mkUser(t, st, "ana", 30, "woman", 48.85, 2.35, nil)
	a := newPhotoAPI(t, st, origin.PhotoOptions{Storage: fullDisk{}})
	r := a.send("POST", "/api/users/me/photos", token(t, me), testphotos.Read(t, "images", "portrait-hopper-512x600.jpg"), "Content-Type", "image/jpeg")
	if r.code != http.StatusInsufficientStorage || r.hdr.Get("Retry-After") == "" || problemCode(t, r) != "storage-full" {
		t.Fatalf("upload to a full disk: %d Retry-After %q %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	p, err := st.GetProfile(context.Background(), me)
	if err != nil || len(p.Uploads) != 0 {
		t.Fatalf("after the refused upload the profile lists %v (%v)", p.Uploads, err)
	}
}
