package deck

import (
	"net/http"
	"slices"
	"testing"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// interimRecorder records every header written with its status.
type interimRecorder struct {
	header  http.Header
	written []struct {
		status int
		header http.Header
	}
	body []byte
}

func (r *interimRecorder) Header() http.Header { return r.header }
func (r *interimRecorder) WriteHeader(code int) {
	r.written = append(r.written, struct {
		status int
		header http.Header
	}{code, r.header.Clone()})
}
func (r *interimRecorder) Write(b []byte) (int, error) {
	r.body = append(r.body, b...)
	return len(b), nil
}

func TestHintWriter(t *testing.T) {
	a, err := NewAnnouncer(imageproxy.DefaultPlan(), 2)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/api/matches/suggestions?w=100", nil)
	req.Header.Set("ECT", "4g")
	req.Header.Set("Accept", "application/json")

	rec := &interimRecorder{header: make(http.Header)}
	var warmed []Preload
	w := &hintWriter{ResponseWriter: rec, announcer: a, req: req, warm: func(ps []Preload) { warmed = ps }}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(contract.DeckPhotos, "/api/users/1/photos/a.jpg http://x/y /api/users/2/photos/b.jpg /api/users/3/photos/c.jpg")
	if _, err := w.Write([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantLinks := []string{
		`</api/users/1/photos/a.jpg?w=800&q=85>; rel=preload; as=image; type="image/jpeg"`,
		`</api/users/2/photos/b.jpg?w=800&q=85>; rel=preload; as=image; type="image/jpeg"`,
	}
	if len(rec.written) != 2 || rec.written[0].status != http.StatusEarlyHints || rec.written[1].status != 200 {
		t.Fatalf("statuses written: %+v", rec.written)
	}
	if h := rec.written[0].header; len(h) != 1 || !slices.Equal(h.Values("Link"), wantLinks) {
		t.Errorf("103 header %v, want only Link %q", h, wantLinks)
	}
	if h := rec.written[1].header; h.Get("Content-Type") != "application/json" || h.Get("Link") != "" || h.Get(contract.DeckPhotos) != "" {
		t.Errorf("200 header %v", h)
	}
	if len(warmed) != 2 || warmed[0].Variant.String() != "w800-q85-jpeg" {
		t.Errorf("warmed %+v", warmed)
	}

	// Not a 200, or not a GET: nothing announced, the field still removed.
	for _, tc := range []struct {
		method string
		status int
	}{{"GET", 304}, {"GET", 500}, {"HEAD", 200}} {
		rec := &interimRecorder{header: make(http.Header)}
		r, _ := http.NewRequest(tc.method, "/api/matches/suggestions", nil)
		w := &hintWriter{ResponseWriter: rec, announcer: a, req: r, warm: func([]Preload) { t.Errorf("%s %d warmed", tc.method, tc.status) }}
		w.Header().Set(contract.DeckPhotos, "/api/users/1/photos/a.jpg")
		w.WriteHeader(tc.status)
		if len(rec.written) != 1 || rec.written[0].header.Get(contract.DeckPhotos) != "" {
			t.Errorf("%s %d: %+v", tc.method, tc.status, rec.written)
		}
	}
}
