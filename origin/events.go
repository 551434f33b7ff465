package origin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spark-edge/spark/eventbus"
	"github.com/spark-edge/spark/origin/store"
)

// Events API limits.
const (
	// DefaultEventLimit is the page size of GET /api/events without ?limit=.
	DefaultEventLimit = 500
	// MaxEventLimit is the largest ?limit= accepted.
	MaxEventLimit = 1000
	// StreamPath is where the origin serves its event stream to edges
	// (ServerOptions.EventStream): the path eventbus's StreamClient dials.
	StreamPath = eventbus.StreamPath
)

// eventsPage is the body of GET /api/events.
type eventsPage struct {
	Events  []store.Event `json:"events"`
	LastSeq int64         `json:"last_seq"`
}

// listEvents serves GET /api/events?since=N&limit=L: the caller's events
// after N, ascending, and their newest seq; 410 when events after N are no
// longer kept (or N is beyond the log).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, me int64) error {
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q, "limit", DefaultEventLimit, MaxEventLimit)
	if err != nil {
		return err
	}
	var since int64
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseInt(v, 10, 64); err != nil || since < 0 {
			return badRequest("since must be a sequence number: an integer, 0 or more")
		}
	}
	page, err := s.store.Events(r.Context(), me, since, limit)
	if err != nil {
		return fmt.Errorf("events of %d after %d: %w", me, since, err)
	}
	if page.Events == nil {
		page.Events = []store.Event{}
	}
	privateNoStore(w)
	return writeJSON(w, http.StatusOK, eventsPage{Events: page.Events, LastSeq: page.LastSeq})
}

// pruneEvents runs retention every cfg.PruneEvery until ctx ends: each
// user keeps their last cfg.KeepLast events or cfg.KeepFor of them,
// whichever is more. It runs beside the API, never on a request's path;
// errors are logged and the next round tries again.
func pruneEvents(ctx context.Context, st store.Store, cfg EventsConfig, pruned prometheus.Counter, log *slog.Logger) {
	every := cfg.PruneEvery
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := st.PruneEvents(ctx, store.Retention{KeepLast: cfg.KeepLast, KeepFor: cfg.KeepFor, Now: start})
		pruned.Add(float64(n))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("pruning events failed; next round in "+every.String(), "deleted", n, "err", err)
		case n > 0:
			log.Info("events pruned", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}
