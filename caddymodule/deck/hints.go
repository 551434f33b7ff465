package deck

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/spark-edge/spark/imageproxy"
	"github.com/spark-edge/spark/internal/contract"
)

// Preload is one photo of the deck in the variant a client gets.
type Preload struct {
	// Path is the photo's path on the photo route.
	Path string
	// Variant is the variant the client's hints choose.
	Variant imageproxy.Variant
}

// URL is the path with the variant's width and quality as ?w= and ?q=, so
// that whoever fetches it gets that width and quality whatever hints it
// sends (the format follows the fetch's Accept).
func (p Preload) URL() string {
	return p.Path + "?w=" + strconv.Itoa(p.Variant.Width) + "&q=" + strconv.Itoa(p.Variant.Quality)
}

// Link is the Link field value announcing p.
func (p Preload) Link() string {
	return "<" + p.URL() + `>; rel=preload; as=image; type="` + p.Variant.Format.ContentType() + `"`
}

// Announcer chooses the deck's preloads for a request.
type Announcer struct {
	plan    imageproxy.Plan
	formats []imageproxy.Format
	photos  int
}

// NewAnnouncer returns an Announcer of at most photos preloads per deck,
// choosing variants with plan.
func NewAnnouncer(plan imageproxy.Plan, photos int) (*Announcer, error) {
	if err := plan.Validate(); err != nil {
		return nil, fmt.Errorf("variant plan: %w", err)
	}
	if photos < 1 || photos > contract.MaxDeckPhotos {
		return nil, fmt.Errorf("photos must be 1..%d, got %d", contract.MaxDeckPhotos, photos)
	}
	return &Announcer{plan: plan, formats: imageproxy.EncoderFormats(plan.Formats), photos: photos}, nil
}

// Preloads returns the preloads for the paths of a DeckPhotos field
// (already checked by PhotoPaths) and the request r: the variant the
// plan chooses from r's network and layout hints, and the format from the
// image types r's Accept lists (JPEG when it lists none: an app sends
// e.g. "Accept: application/json, image/webp" on the deck request to be
// told WebP). A ?w= or ?q= of the suggestions request is not a photo's.
func (a *Announcer) Preloads(r *http.Request, paths []string) []Preload {
	if len(paths) == 0 {
		return nil
	}
	h := imageproxy.ParseHints(r.Header, nil)
	v := a.plan.Choose(h, a.formats)
	out := make([]Preload, 0, min(len(paths), a.photos))
	for _, p := range paths {
		if len(out) == a.photos {
			break
		}
		out = append(out, Preload{Path: p, Variant: v})
	}
	return out
}

// hintWriter wraps a response: at the final status it removes the
// DeckPhotos and DeckCards fields and, for a GET answered 200 listing
// photos, first sends 103 Early Hints announcing them and hands them to
// warm; the cards' profile paths go to warmCards and the next page's URL
// to warmNext. DeckNext is removed too.
type hintWriter struct {
	http.ResponseWriter
	announcer *Announcer
	req       *http.Request
	warm      func([]Preload) // nil: announce only
	announced func(n int)
	// cards is how many of the deck's card profiles go to warmCards (0:
	// none); warmCards gets their paths when the deck was not a hit of
	// the cache (a hit's cards were warmed when it was filled). warmNext
	// gets the next page's URL on hits too.
	cards     int
	warmCards func(paths []string)
	// warmNext gets the URL of the deck's next page (nil: none).
	warmNext func(url string)
	wrote    bool
}

// WriteHeader sends the hints before the final status.
func (w *hintWriter) WriteHeader(code int) {
	h := w.Header()
	if w.wrote || (code >= 100 && code < 200) {
		delete(h, contract.DeckPhotos)
		delete(h, contract.DeckCards)
		delete(h, contract.DeckNext)
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	paths := PhotoPaths(h.Values(contract.DeckPhotos), w.announcer.photos)
	var cards []string
	var next string
	if code == http.StatusOK && w.req.Method == http.MethodGet {
		// A hit's cards were warmed at its fill; the page after it may
		// not have been (a page warmed ahead warms none after it).
		if w.warmCards != nil && !contract.IsCacheHit(h.Get(contract.CacheStatus)) {
			cards = CardProfilePaths(h.Values(contract.DeckCards), w.cards)
		}
		if w.warmNext != nil {
			next = NextPageURL(w.req, h.Get(contract.DeckNext))
		}
	}
	delete(h, contract.DeckPhotos)
	delete(h, contract.DeckCards)
	delete(h, contract.DeckNext)
	// The page first: it shares the viewer warms' queue with the cards,
	// and one page stands for up to a page of cards' misses.
	if next != "" {
		w.warmNext(next)
	}
	if len(cards) > 0 {
		w.warmCards(cards)
	}
	if code == http.StatusOK && w.req.Method == http.MethodGet && len(paths) > 0 {
		ps := w.announcer.Preloads(w.req, paths)
		w.sendHints(ps)
		if w.announced != nil {
			w.announced(len(ps))
		}
		if w.warm != nil {
			w.warm(ps)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// sendHints writes a 103 carrying only the Link fields: the header map
// holds the final response's fields at this point, which an interim
// response must not carry; they are put back after it.
func (w *hintWriter) sendHints(ps []Preload) {
	h := w.Header()
	saved := make(http.Header, len(h))
	for k, v := range h {
		saved[k] = v
		delete(h, k)
	}
	for _, p := range ps {
		h.Add("Link", p.Link())
	}
	w.ResponseWriter.WriteHeader(http.StatusEarlyHints)
	for k := range h {
		delete(h, k)
	}
	for k, v := range saved {
		h[k] = v
	}
}

// Write writes the body, the implicit 200 first.
func (w *hintWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer, the implicit 200 first.
func (w *hintWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *hintWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
