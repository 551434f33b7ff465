package origin

import (
	"encoding/json"
	"net/http"

	"github.com/spark-edge/spark/internal/contract"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// problemType returns the type URI (relative, resolved against the API) for a
// short problem code.
func problemType(code string) string {
	if code == "" {
		return "about:blank"
	}
	return "/problems/" + code
}

// writeProblem sends a problem+json response; errors are never cached.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	p := Problem{Type: problemType(code), Title: http.StatusText(status), Status: status, Detail: detail}
	if r != nil {
		p.Instance = r.URL.Path
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	h.Del(contract.CacheTags)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}
