package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	want := Doc{Type: "/problems/x", Title: "Forbidden", Status: http.StatusForbidden, Detail: "no", Instance: "/api/a"}
	Write(w, want)
	res := w.Result()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", res.StatusCode)
	}
	for field, v := range map[string]string{
		"Content-Type": MediaType, "Cache-Control": "no-store", "Content-Length": strconv.Itoa(w.Body.Len()),
		"WWW-Authenticate": `Bearer error="invalid_token"`,
	} {
		if got := res.Header.Get(field); got != v {
			t.Errorf("%s: %q, want %q", field, got, v)
		}
	}
	body := w.Body.Bytes()
	if len(body) == 0 || body[len(body)-1] != '\n' {
		t.Errorf("body %q does not end in a newline", body)
	}
	var got Doc
	if err := json.Unmarshal(body, &got); err != nil || got != want {
		t.Errorf("body %s (%v), want %+v", body, err, want)
	}
}

func TestJSONLeavesOutEmptyDetailAndInstance(t *testing.T) {
	got := string(Doc{Type: "about:blank", Title: "Bad Request", Status: 400}.JSON())
	if want := `{"type":"about:blank","title":"Bad Request","status":400}` + "\n"; got != want {
		t.Errorf("JSON() = %q, want %q", got, want)
	}
}
