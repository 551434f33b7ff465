package origin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spark-edge/spark/origin/store/memory"
)

func TestDevicesAPI(t *testing.T) {
	st := memory.New()
	a := newAPI(t, st)
	ana := mkUser(t, st, "Ana", 30, "woman", 48.85, 2.35, nil)
	bo := mkUser(t, st, "Bo", 31, "man", 48.85, 2.35, nil)
	tokA, tokB := token(t, ana), token(t, bo)
	apns := strings.Repeat("0a1b", 16)
	body := `{"platform":"ios","token":"` + apns + `","app_id":"app.spark","locale":"es-MX","previews":true}`

	expect(t, a.do(http.MethodPut, "/api/users/me/devices", "", body), http.StatusUnauthorized, "no token")
	expect(t, a.do(http.MethodPut, "/api/users/me/devices", tokA, body), http.StatusCreated, "register")
	r := a.do(http.MethodPut, "/api/users/me/devices", tokA, body)
	expect(t, r, http.StatusOK, "register again")
	if strings.Contains(r.body, apns) {
		t.Fatalf("the answer echoes the token: %s", r.body)
	}
	ds, err := st.Devices(t.Context(), ana)
	if err != nil || len(ds) != 1 || ds[0].Locale != "es-MX" || !ds[0].Previews {
		t.Fatalf("stored devices %+v %v", ds, err)
	}
	for _, bad := range []string{
		`{"platform":"web","token":"x","app_id":"a"}`,
		`{"platform":"ios","token":"not-hex","app_id":"a"}`,
		`{"platform":"android","token":"x","app_id":""}`,
		`{"platform":"android","token":"x","app_id":"a","locale":"x"}`,
		`{"platform":"android","token":"x","app_id":"a","extra":1}`,
		`{`,
	} {
		expect(t, a.do(http.MethodPut, "/api/users/me/devices", tokA, bad), http.StatusBadRequest, bad)
	}
	// Another user cannot unregister Ana's token.
	del := `{"token":"` + apns + `"}`
	expect(t, a.do(http.MethodDelete, "/api/users/me/devices", tokB, del), http.StatusNotFound, "delete another's")
	expect(t, a.do(http.MethodDelete, "/api/users/me/devices", tokA, del), http.StatusNoContent, "delete")
	expect(t, a.do(http.MethodDelete, "/api/users/me/devices", tokA, del), http.StatusNotFound, "delete again")
	expect(t, a.do(http.MethodDelete, "/api/users/me/devices", tokA, `{"token":""}`), http.StatusBadRequest, "empty token")
}
