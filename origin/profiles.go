package origin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin/store"
)

func profileETag(p store.Profile) string { return fmt.Sprintf(`"u%d-v%d"`, p.ID, p.Version) }

// matchIfMatch evaluates an If-Match value against the resource id: it
// returns the version to require (0 for "*"), or ErrPreconditionFailed when
// no listed entity tag can be ours (weak tags never match: strong comparison).
func matchIfMatch(header string, id int64) (int64, error) {
	header = strings.TrimSpace(header)
	if header == "*" {
		return 0, nil
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		var uid, ver int64
		if strings.HasPrefix(tag, "W/") {
			continue
		}
		if n, err := fmt.Sscanf(tag, `"u%d-v%d"`, &uid, &ver); err == nil && n == 2 && uid == id && ver > 0 &&
			tag == fmt.Sprintf(`"u%d-v%d"`, uid, ver) {
			return ver, nil
		}
	}
	return -1, fmt.Errorf("If-Match %q: %w", header, store.ErrPreconditionFailed)
}

type profileJSON struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Age    int16    `json:"age"`
	Gender string   `json:"gender"`
	Bio    string   `json:"bio"`
	Photos []string `json:"photos"`
	Active bool     `json:"active"`
}

func toProfileJSON(p store.Profile) profileJSON {
	return profileJSON{ID: p.ID, Name: p.Name, Age: p.Age, Gender: p.Gender, Bio: p.Bio, Photos: photoList(p), Active: p.Active}
}

// getProfile is GET /api/users/{id}/profile. Who may read it, and how an
// edge may keep it:
//   - the owner (by number or "me"): always, also when inactive; private,
//     max-age=300, Vary: Authorization (an edge keeps it per credential
//     where a rule allows; every write to the profile purges its tags).
//   - anyone else: only an active profile whose owner is not in a block
//     relation with them (404 otherwise, like a missing user). The answer is
//     public, max-age=300, with Spark-Deny-Users listing the users in a
//     block relation with the owner, whom an edge must never serve it to;
//     past contract.MaxDenyUsers of them it is private, no-cache, Vary:
//     Authorization instead, so every use comes back here.
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, me int64) error {
	id := me
	if v := r.PathValue("id"); v != "me" {
		var err error
		if id, err = parseID("user id", v); err != nil {
			return err
		}
	}
	p, err := s.store.GetProfile(r.Context(), id)
	if err != nil {
		return fmt.Errorf("get profile %d: %w", id, err)
	}
	self := id == me
	if !p.Active && !self {
		return fmt.Errorf("profile %d inactive: %w", id, store.ErrNotFound)
	}
	var deny []int64
	if !self {
		if deny, err = s.store.BlockedWith(r.Context(), id, contract.MaxDenyUsers+1); err != nil {
			return fmt.Errorf("get profile %d: %w", id, err)
		}
		blocked := slices.Contains(deny, me)
		if len(deny) > contract.MaxDenyUsers {
			// The list was cut: ask about this viewer alone.
			if blocked, err = s.store.Blocked(r.Context(), id, me); err != nil {
				return fmt.Errorf("get profile %d: %w", id, err)
			}
		}
		if blocked {
			return fmt.Errorf("profile %d for %d: block: %w", id, me, store.ErrNotFound)
		}
	}
	etag := profileETag(p)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set(contract.CacheTags, contract.JoinTags(profileTags(id)...))
	switch {
	case self:
		// user: only: a block purges profile: tags (the shared copies'
		// deny lists change), which leaves the owner's own view as it was.
		privateCached(w, contract.UserTag(id))
	case len(deny) > contract.MaxDenyUsers:
		h.Set("Cache-Control", "private, no-cache")
		h.Set("Vary", "Authorization")
	default:
		h.Set("Cache-Control", "public, max-age=300")
		if len(deny) > 0 {
			h.Set(contract.DenyUsers, formatIDs(deny))
		}
	}
	if contract.MatchETagList(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, toProfileJSON(p))
}

// ownProfilePath is the caller's own profile, as the app asks for it.
const ownProfilePath = "/api/users/me/profile"

// putProfile is PUT /api/users/me/profile or /api/users/{own id}/profile
// (another user's: 403). Clients should prefer the numbered URL: an edge
// invalidates every stored variant of a written URL (RFC 9111 §4.4), and
// every user's own profile is stored under /api/users/me/profile, so a
// write there empties all of them; the Spark-Purge below drops the
// writer's own entries either way.
func (s *Server) putProfile(w http.ResponseWriter, r *http.Request, me int64) error {
	if v := r.PathValue("id"); v != "" && v != "me" {
		id, err := parseID("user id", v)
		if err != nil {
			return err
		}
		if id != me {
			return &requestError{status: http.StatusForbidden, code: "forbidden", msg: "only your own profile can be updated"}
		}
	}
	up, err := decodeRequest(w, r, func(b []byte) (store.ProfileUpdate, error) { return DecodeProfile(me, b) })
	if err != nil {
		return err
	}
	var ifVersion int64
	if im := r.Header.Get("If-Match"); im != "" {
		v, err := matchIfMatch(im, me)
		if err != nil {
			return err
		}
		ifVersion = v
	}
	p, err := s.store.UpdateProfile(r.Context(), me, up, ifVersion)
	if err != nil {
		return fmt.Errorf("update profile %d: %w", me, err)
	}
	privateNoStore(w)
	w.Header().Set("ETag", profileETag(p))
	setPurge(w, profileTags(me)...)
	setRefresh(w, ownProfilePath) // what the app shows after an edit
	return writeJSON(w, http.StatusOK, toProfileJSON(p))
}

func (s *Server) getPreferences(w http.ResponseWriter, r *http.Request, me int64) error {
	p, err := s.store.GetPreferences(r.Context(), me)
	if err != nil {
		return fmt.Errorf("get preferences %d: %w", me, err)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Header().Set("Vary", "Authorization")
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) putPreferences(w http.ResponseWriter, r *http.Request, me int64) error {
	p, err := decodeRequest(w, r, DecodePreferences)
	if err != nil {
		return err
	}
	if err := s.store.PutPreferences(r.Context(), me, p); err != nil {
		return fmt.Errorf("put preferences %d: %w", me, err)
	}
	privateNoStore(w)
	setPurge(w, contract.SuggestionsTag(me))
	return writeJSON(w, http.StatusOK, p)
}
