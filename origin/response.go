package origin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/spark-edge/spark/internal/contract"
)

// writeJSON sends v as JSON (with a final newline) and status. Nothing is
// written when v cannot be encoded.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) // net/http buffers: two writes, no copy into a longer slice
	_, _ = io.WriteString(w, "\n")
	return nil
}

// privateNoStore marks an answer as the caller's alone and never stored.
func privateNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Vary", "Authorization")
}

// privateCached marks an answer as the caller's alone, kept by an edge per
// credential until a purge of one of tags (or five minutes pass): every
// write that changes it purges one of them. The five minutes are the
// edge's alone (CDN-Cache-Control, RFC 9213): a phone's own HTTP cache
// gets no purges, so for it the answer is no-cache — revalidated on every
// use, which the edge answers from its entry.
func privateCached(w http.ResponseWriter, tags ...string) {
	h := w.Header()
	h.Set("Cache-Control", "private, no-cache")
	h.Set("CDN-Cache-Control", "max-age=300")
	h.Set("Vary", "Authorization")
	h.Set(contract.CacheTags, contract.JoinTags(tags...))
}

// setPurge asks every edge to drop the entries carrying any of tags.
func setPurge(w http.ResponseWriter, tags ...string) {
	w.Header().Set(contract.SparkPurge, contract.JoinTags(tags...))
}

// setRefresh asks the edge to fetch paths (the writer's own per-user
// answers this write changed) again with the writer's request once the
// write's purge is applied, so the writer's next read of them is a hit.
func setRefresh(w http.ResponseWriter, paths ...string) {
	w.Header().Set(contract.SparkRefresh, strings.Join(paths, ", "))
}

// profileTags are the tags of user id's profile (and what changes it).
func profileTags(id int64) []string {
	return []string{contract.UserTag(id), contract.ProfileTag(id)}
}

// formatIDs writes ids in decimal, space-separated.
func formatIDs(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}
