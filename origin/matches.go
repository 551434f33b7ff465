package origin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

func (s *Server) block(w http.ResponseWriter, r *http.Request, me int64) error {
	target, err := parseID("user id", r.PathValue("id"))
	if err != nil {
		return err
	}
	evs, err := s.store.Block(r.Context(), me, target)
	if err != nil {
		return fmt.Errorf("block %d by %d: %w", target, me, err)
	}
	s.events.publish(evs)
	privateNoStore(w)
	// Both profiles: each edge drops its shared copy, whose deny list no
	// longer names the other user, and the next fetch carries the new one.
	setPurge(w, contract.SuggestionsTag(me), contract.SuggestionsTag(target), contract.MatchesTag(me), contract.MatchesTag(target),
		contract.ProfileTag(me), contract.ProfileTag(target))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type matchJSON struct {
	ID             int64     `json:"id"`
	PeerID         int64     `json:"peer_id"`
	ConversationID int64     `json:"conversation_id"`
	CreatedAt      time.Time `json:"created_at"`
}

func toMatchJSON(m store.Match) matchJSON {
	return matchJSON{ID: m.ID, PeerID: m.PeerID, ConversationID: m.ConversationID, CreatedAt: m.CreatedAt}
}

func (s *Server) swipe(w http.ResponseWriter, r *http.Request, me int64) error {
	start := time.Now()
	defer func() { s.metrics.Swipe.Observe(time.Since(start).Seconds()) }()
	req, err := decodeRequest(w, r, DecodeSwipe)
	if err != nil {
		return err
	}
	res, err := s.store.Swipe(r.Context(), me, req.TargetID, req.Direction)
	if err != nil {
		return fmt.Errorf("swipe %d->%d: %w", me, req.TargetID, err)
	}
	s.events.publish(res.Events)
	s.pushSwipe(me, req.TargetID, res)
	privateNoStore(w)
	// Only the swiper's deck pages holding the target change (suggestions
	// leave out the users one swiped, not those who swiped on one; a page
	// after a cursor does not hold the cards before it, so the next page
	// stays while the viewer swipes through this one); the match lists
	// (and with them the inboxes and message lists, tagged with them) only
	// when a match was made.
	purge := []string{contract.DeckCardTag(me, req.TargetID)}
	if res.Match != nil {
		purge = append(purge, contract.MatchesTag(me), contract.MatchesTag(req.TargetID))
	}
	setPurge(w, purge...)
	body := map[string]any{"target_id": req.TargetID, "direction": res.Direction, "created": res.Created, "match": nil}
	if res.Match != nil {
		body["match"] = toMatchJSON(*res.Match)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, body)
}

func (s *Server) listMatches(w http.ResponseWriter, r *http.Request, me int64) error {
	fields, err := requestListFields(r, matchFieldNames)
	if err != nil {
		return err
	}
	ms, err := s.store.ListMatches(r.Context(), me)
	if err != nil {
		return fmt.Errorf("list matches %d: %w", me, err)
	}
	out := make([]matchJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, toMatchJSON(m))
	}
	privateCached(w, contract.MatchesTag(me))
	shaped, err := shapeList(out, fields)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"matches": shaped})
}

func (s *Server) unmatch(w http.ResponseWriter, r *http.Request, me int64) error {
	id, err := parseID("match id", r.PathValue("id"))
	if err != nil {
		return err
	}
	m, evs, err := s.store.Unmatch(r.Context(), me, id)
	if err != nil {
		return fmt.Errorf("unmatch %d by %d: %w", id, me, err)
	}
	s.events.publish(evs)
	privateNoStore(w)
	setPurge(w, contract.MatchesTag(me), contract.MatchesTag(m.PeerID))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
