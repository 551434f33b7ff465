package origin

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

// Suggestion list limits.
const (
	// DefaultSuggestionLimit is the page size without ?limit=.
	DefaultSuggestionLimit = 20
	// MaxSuggestionLimit is the largest ?limit= accepted.
	MaxSuggestionLimit = 100
	// ListBioRunes is how much of a bio a suggestion carries ("…" when cut).
	ListBioRunes = 140
)

// suggestionFields are the fields= a client may select; photos only on request.
var suggestionFields = []string{"id", "name", "age", "gender", "bio", "distance_km", "photos"}

var defaultSuggestionFields = []string{"id", "name", "age", "gender", "bio", "distance_km"}

// ParseFields validates a fields= list against the allowed names.
func ParseFields(v string) ([]string, error) {
	if v == "" {
		return append([]string(nil), defaultSuggestionFields...), nil
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(suggestionFields, f) {
			return nil, badRequest("unknown field %q; allowed: %s", f, strings.Join(suggestionFields, ","))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// TruncateRunes shortens s to at most n runes, ending with "…" when cut.
func TruncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

func (s *Server) suggestions(w http.ResponseWriter, r *http.Request, me int64) error {
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q, "limit", DefaultSuggestionLimit, MaxSuggestionLimit)
	if err != nil {
		return err
	}
	fields, err := ParseFields(q.Get("fields"))
	if err != nil {
		return err
	}
	var after *deckCursor
	if v := q.Get("after"); v != "" {
		c, err := parseDeckCursor(v)
		if err != nil {
			return err
		}
		after = &c
	}
	start := time.Now()
	cs, err := s.suggestionsAfter(r.Context(), me, limit, after)
	s.metrics.Matching.WithLabelValues(s.storeName).Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("suggestions for %d: %w", me, err)
	}
	body := appendSuggestions(make([]byte, 0, 96+200*len(cs)), cs, newFieldSet(fields))
	next := cursorOf(cs, limit)
	if next != nil {
		// {"suggestions":[…],"next":"<cursor>"}: the page's end reopened.
		body = append(body[:len(body)-len("}\n")], `,"next":"`+next.String()+"\"}\n"...)
	}
	h := w.Header()
	// Two minutes for the edge only (its entry is purged by the swiper's
	// swipe on one of its cards); a phone's HTTP cache, which no purge
	// reaches, would hand the app a deck with cards it has swiped since.
	h.Set("Cache-Control", "private, no-cache")
	h.Set("CDN-Cache-Control", "max-age=120")
	h.Set("Vary", "Authorization")
	h.Set(contract.CacheTags, deckTags(me, cs))
	if deck := deckPhotos(cs); deck != "" {
		h.Set(contract.DeckPhotos, deck)
	}
	if cards := deckCards(cs); cards != "" {
		h.Set(contract.DeckCards, cards)
	}
	if next != nil {
		h.Set(contract.DeckNext, next.String())
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

// deckPhotos is the contract.DeckPhotos field of a suggestions page: the
// first upload of each card that has one, in deck order, at most
// contract.MaxDeckPhotos ("" when no card has an upload).
func deckPhotos(cs []store.Candidate) string {
	var paths []string
	for i := range cs {
		if len(paths) == contract.MaxDeckPhotos {
			break
		}
		if up := cs[i].Profile.Uploads; len(up) > 0 {
			paths = append(paths, PhotoPath(cs[i].Profile.ID, up[0]))
		}
	}
	return strings.Join(paths, " ")
}

// deckCards is the contract.DeckCards field of a suggestions page: the
// cards' user ids in deck order, at most contract.MaxDeckCards ("" for an
// empty page).
func deckCards(cs []store.Candidate) string {
	b := make([]byte, 0, 8*min(len(cs), contract.MaxDeckCards))
	for i := range cs {
		if i == contract.MaxDeckCards {
			break
		}
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, cs[i].Profile.ID, 10)
	}
	return string(b)
}

// deckTags are the tags of a suggestions page: the viewer's suggestions
// (a move, new preferences or a block purge every page) and one per card
// (a swipe purges the pages holding the swiped card, no other).
func deckTags(me int64, cs []store.Candidate) string {
	tags := make([]string, 0, 1+len(cs))
	tags = append(tags, contract.SuggestionsTag(me))
	for i := range cs {
		tags = append(tags, contract.DeckCardTag(me, cs[i].Profile.ID))
	}
	return contract.JoinTags(tags...)
}
