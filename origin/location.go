package origin

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/spark-edge/spark/internal/contract"
)

// putLocation is PUT /api/users/me/location: rate-limited per user (429
// with Retry-After past the limit), stored coarsely (the store keeps a grid
// cell's centre, see store.Store.SetLocation). The answer is the point now
// stored; a report that kept it purges nothing.
func (s *Server) putLocation(w http.ResponseWriter, r *http.Request, me int64) error {
	pt, err := decodeRequest(w, r, DecodeLocation)
	if err != nil {
		return err
	}
	if ok, wait := s.locLimit.allow(me); !ok {
		secs := int64(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return &requestError{status: http.StatusTooManyRequests, code: "too-many-location-updates",
			msg: fmt.Sprintf("too many location updates (%s); retry in %d s", s.locLimit.limit(), secs)}
	}
	ch, err := s.store.SetLocation(r.Context(), me, pt)
	if err != nil {
		return fmt.Errorf("set location %d: %w", me, err)
	}
	privateNoStore(w)
	if !ch.Kept {
		// Only the user's own suggestions depend on their point at an edge;
		// the stores' cell caches drop the old and new cells themselves.
		setPurge(w, contract.SuggestionsTag(me))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"lat": ch.Stored.Lat, "lng": ch.Stored.Lng, "cell": ch.NewCell})
}
