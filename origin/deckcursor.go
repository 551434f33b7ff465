package origin

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spark-edge/spark/origin/store"
)

// The deck is paged by a keyset cursor: suggestions come nearest first,
// ordered by (distance, id), and a page's cursor is its last card's
// position in that order. The page after a cursor holds the cards past it
// that the viewer may still be suggested now, so the viewer's swipes on
// earlier pages never touch it: an edge keeps it, tagged with its own
// cards only (contract.DeckCardTag), while the viewer swipes through the
// page before.
//
// The cursor names a distance between two stored points, which are cell
// centres of the ~1 km grid (as every distance the origin computes): it
// tells no more of anyone's location than the cell.

// deckCursor is a position in the deck's (distance, id) order.
type deckCursor struct {
	distanceM float64
	id        int64
}

// maxDeckFetch bounds how many candidates a page after a cursor reads to
// skip the cards before it that the viewer still holds.
const maxDeckFetch = 4 * MaxSuggestionLimit

// String is the cursor as ?after= takes it: "<metres>_<id>".
func (c deckCursor) String() string {
	return strconv.FormatFloat(c.distanceM, 'f', -1, 64) + "_" + strconv.FormatInt(c.id, 10)
}

// parseDeckCursor reads an ?after= value.
func parseDeckCursor(v string) (deckCursor, error) {
	d, id, ok := strings.Cut(v, "_")
	if !ok {
		return deckCursor{}, badRequest("after must be a cursor from a suggestions page's next")
	}
	dist, err := strconv.ParseFloat(d, 64)
	if err != nil || dist < 0 || math.IsInf(dist, 0) || math.IsNaN(dist) {
		return deckCursor{}, badRequest("after must be a cursor from a suggestions page's next")
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 1 {
		return deckCursor{}, badRequest("after must be a cursor from a suggestions page's next")
	}
	return deckCursor{distanceM: dist, id: n}, nil
}

// before reports whether candidate c comes at or before the cursor.
func (k deckCursor) before(c *store.Candidate) bool {
	return c.DistanceM < k.distanceM || (c.DistanceM == k.distanceM && c.ID <= k.id)
}

// cursorOf is the cursor after the last of a full page, or nil when the
// page was not full (nothing after it now).
func cursorOf(cs []store.Candidate, limit int) *deckCursor {
	if len(cs) == 0 || len(cs) < limit {
		return nil
	}
	last := cs[len(cs)-1]
	return &deckCursor{distanceM: last.DistanceM, id: last.Profile.ID}
}

// suggestionsAfter is the page of at most limit suggestions past after
// (the first page when after is nil): it asks the store for more than a
// page, doubling up to maxDeckFetch, until limit candidates past the
// cursor are found or the store has no more.
func (s *Server) suggestionsAfter(ctx context.Context, me int64, limit int, after *deckCursor) ([]store.Candidate, error) {
	if after == nil {
		return s.store.Suggestions(ctx, me, limit)
	}
	for n := 2 * limit; ; n *= 2 {
		n = min(n, maxDeckFetch)
		cs, err := s.store.Suggestions(ctx, me, n)
		if err != nil {
			return nil, fmt.Errorf("after %s: %w", after, err)
		}
		i := 0
		for i < len(cs) && after.before(&cs[i]) {
			i++
		}
		page := cs[i:]
		if len(page) >= limit || len(cs) < n || n == maxDeckFetch {
			return page[:min(len(page), limit)], nil
		}
	}
}
