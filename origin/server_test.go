package origin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spark-edge/spark/internal/contract"
	"github.com/spark-edge/spark/origin"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

const testSecret = "test-secret-0123456789"

type api struct {
	t   *testing.T
	srv *httptest.Server
	st  store.Store
}

type resp struct {
	code int
	hdr  http.Header
	body string
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func newAPI(t *testing.T, st store.Store, keys ...ed25519.PublicKey) *api {
	t.Helper()
	return newAPIWith(t, origin.ServerOptions{Store: st}, keys...)
}

// newAPIWith serves a server built from o (Auth: testSecret and keys;
// StoreName "test" when empty).
func newAPIWith(t *testing.T, o origin.ServerOptions, keys ...ed25519.PublicKey) *api {
	t.Helper()
	auth, err := origin.NewAuthenticator(testSecret, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Auth = auth
	if o.StoreName == "" {
		o.StoreName = "test"
	}
	s, err := origin.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &api{t: t, srv: hs, st: o.Store}
}

func token(t testing.TB, id int64) string {
	t.Helper()
	tok, err := origin.IssueToken(testSecret, id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request with a JSON body (none when body is empty); hdr is
// alternating name, value.
func (a *api) do(method, path, tok, body string, hdr ...string) resp {
	a.t.Helper()
	if body == "" {
		return a.send(method, path, tok, nil, hdr...)
	}
	return a.send(method, path, tok, []byte(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// send sends a request with tok (if any) as its bearer token; hdr is
// alternating name, value.
func (a *api) send(method, path, tok string, body []byte, hdr ...string) resp {
	a.t.Helper()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: string(b)}
}

func expect(t *testing.T, r resp, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.code, code, r.body)
	}
	if code >= 400 {
		if ct := r.hdr.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s: error Content-Type %q, want application/problem+json", what, ct)
		}
		var p origin.Problem
		r.json(t, &p)
		if p.Status != code || p.Title == "" || p.Type == "" {
			t.Fatalf("%s: bad problem %+v", what, p)
		}
	}
}

func mkUser(t *testing.T, st store.Store, name string, age int16, gender string, lat, lng float64, prefs *store.Preferences) int64 {
	t.Helper()
	id, err := st.CreateUser(context.Background(), store.NewUser{
		Profile:     store.ProfileUpdate{Name: name, Age: age, Gender: gender, Bio: strings.Repeat("long bio ", 40), Photos: []string{"https://img.example/" + name}, Active: true},
		Preferences: prefs, Location: &store.Point{Lat: lat, Lng: lng},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stores returns the factories the API tests run on: the memory store and
// the PostGIS test database (which must be reachable).
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"memory":  func(t *testing.T) store.Store { return memory.New() },
		"postgis": openPostGIS,
	}
}

// onEachStore runs test as a subtest on each store, named after it.
func onEachStore(t *testing.T, test func(t *testing.T, st store.Store)) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) { test(t, mk(t)) })
	}
}

func openPostGIS(t *testing.T) store.Store { return pgtest.Open(t, "test_origin_api") }

func TestAPI(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("Auth", func(t *testing.T) { testAuth(t, mk(t)) })
			t.Run("Profile", func(t *testing.T) { testProfileAPI(t, mk(t)) })
			t.Run("PreferencesAndLocation", func(t *testing.T) { testPrefsLocation(t, mk(t)) })
			t.Run("Suggestions", func(t *testing.T) { testSuggestionsAPI(t, mk(t)) })
			t.Run("SwipesMatchesChat", func(t *testing.T) { testSwipeChat(t, mk(t)) })
			t.Run("BadInput", func(t *testing.T) { testBadInput(t, mk(t)) })
			t.Run("Ops", func(t *testing.T) { testOps(t, mk(t)) })
		})
	}
}

func testAuth(t *testing.T, st store.Store) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, st, pub)
	id := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	expect(t, a.do("GET", "/api/matches", "", ""), 401, "no token")
	r := a.do("GET", "/api/matches", "garbage", "")
	expect(t, r, 401, "garbage token")
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", r.hdr.Get("WWW-Authenticate"))
	}
	forged, _ := origin.IssueToken("another-secret", id, time.Hour, time.Now())
	expect(t, a.do("GET", "/api/matches", forged, ""), 401, "forged token")
	expired, _ := origin.IssueToken(testSecret, id, time.Hour, time.Now().Add(-3*time.Hour))
	expect(t, a.do("GET", "/api/matches", expired, ""), 401, "expired token")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: fmt.Sprint(id),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	expect(t, a.do("GET", "/api/matches", none, ""), 401, "alg none")
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: fmt.Sprint(id)}).SignedString([]byte(testSecret))
	expect(t, a.do("GET", "/api/matches", noExp, ""), 401, "no exp")
	badSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "admin",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString([]byte(testSecret))
	expect(t, a.do("GET", "/api/matches", badSub, ""), 401, "non-numeric sub")
	ed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: fmt.Sprint(id),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, a.do("GET", "/api/matches", ed, ""), 200, "EdDSA token")
	expect(t, a.do("GET", "/api/matches", token(t, id), ""), 200, "HS256 token")
}

func testProfileAPI(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	me := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	other := mkUser(t, st, "bob", 31, "man", 1, 1, nil)
	tok := token(t, me)
	r := a.do("GET", fmt.Sprintf("/api/users/%d/profile", other), tok, "")
	expect(t, r, 200, "get other profile")
	etag := r.hdr.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || r.hdr.Get("Cache-Control") != "public, max-age=300" ||
		!strings.Contains(r.hdr.Get("Cache-Tags"), fmt.Sprintf("user:%d", other)) {
		t.Fatalf("profile headers: %v", r.hdr)
	}
	var p map[string]any
	r.json(t, &p)
	if p["name"] != "bob" || p["id"].(float64) != float64(other) {
		t.Fatalf("profile body %v", p)
	}
	expect(t, a.do("GET", fmt.Sprintf("/api/users/%d/profile", other), tok, "", "If-None-Match", etag), 304, "conditional GET")
	expect(t, a.do("GET", "/api/users/999999/profile", tok, ""), 404, "missing profile")
	expect(t, a.do("GET", "/api/users/abc/profile", tok, ""), 400, "non-numeric id")
	expect(t, a.do("GET", "/api/users/-3/profile", tok, ""), 400, "negative id")

	r = a.do("GET", "/api/users/me/profile", tok, "")
	expect(t, r, 200, "get own profile")
	myTag := r.hdr.Get("ETag")
	body := `{"name":"Ann B","age":31,"gender":"woman","bio":"hi","photos":[]}`
	r = a.do("PUT", "/api/users/me/profile", tok, body, "If-Match", myTag)
	expect(t, r, 200, "conditional PUT")
	if r.hdr.Get("ETag") == myTag || r.hdr.Get("ETag") == "" {
		t.Fatalf("ETag did not change: %q", r.hdr.Get("ETag"))
	}
	if pg := r.hdr.Get("Spark-Purge"); !strings.Contains(pg, fmt.Sprintf("user:%d", me)) {
		t.Fatalf("Spark-Purge = %q", pg)
	}
	expect(t, a.do("PUT", "/api/users/me/profile", tok, body, "If-Match", myTag), 412, "lost update")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, body, "If-Match", "W/"+r.hdr.Get("ETag")), 412, "weak If-Match")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, body, "If-Match", etag), 412, "someone else's ETag")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, body, "If-Match", "*"), 200, "If-Match *")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, body), 200, "unconditional PUT")
	got, _ := st.GetProfile(context.Background(), me)
	if got.Name != "Ann B" || got.Age != 31 {
		t.Fatalf("stored %+v", got)
	}
}

func testPrefsLocation(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	me := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	tok := token(t, me)
	r := a.do("GET", "/api/users/me/preferences", tok, "")
	expect(t, r, 200, "default prefs")
	if !strings.Contains(r.hdr.Get("Cache-Control"), "private") {
		t.Fatalf("prefs Cache-Control %q", r.hdr.Get("Cache-Control"))
	}
	r = a.do("PUT", "/api/users/me/preferences", tok, `{"min_age":25,"max_age":40,"max_distance_km":30,"genders":["man","man"]}`)
	expect(t, r, 200, "put prefs")
	if r.hdr.Get("Spark-Purge") != fmt.Sprintf("suggestions:%d", me) {
		t.Fatalf("prefs purge %q", r.hdr.Get("Spark-Purge"))
	}
	var p store.Preferences
	a.do("GET", "/api/users/me/preferences", tok, "").json(t, &p)
	if p.MinAge != 25 || p.MaxDistanceKm != 30 || len(p.Genders) != 1 {
		t.Fatalf("prefs %+v", p)
	}
	for _, bad := range []string{`{"min_age":17,"max_age":40,"max_distance_km":30,"genders":["man"]}`,
		`{"min_age":40,"max_age":30,"max_distance_km":30,"genders":["man"]}`,
		`{"min_age":20,"max_age":30,"max_distance_km":0,"genders":["man"]}`,
		`{"min_age":20,"max_age":30,"max_distance_km":10,"genders":[]}`,
		`{"min_age":20,"max_age":30,"max_distance_km":10,"genders":["robot"]}`} {
		expect(t, a.do("PUT", "/api/users/me/preferences", tok, bad), 400, "bad prefs "+bad)
	}
	r = a.do("PUT", "/api/users/me/location", tok, `{"lat":-16.8,"lng":179.95}`)
	expect(t, r, 200, "set location")
	// Only the mover's suggestions: no stored response at an edge carries a
	// cell tag (the stores' cell caches purge themselves).
	if r.hdr.Get("Spark-Purge") != fmt.Sprintf("suggestions:%d", me) || r.hdr.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("location headers %v", r.hdr)
	}
	for _, bad := range []string{`{"lat":91,"lng":0}`, `{"lat":0,"lng":-180.5}`, `{"lat":"NaN","lng":0}`, `{"lat":1e999,"lng":0}`,
		`{"lat":10}`, `{}`, `{"lat":null,"lng":1}`, `[1,2]`, `{"lat":1,"lng":2,"alt":3}`} {
		expect(t, a.do("PUT", "/api/users/me/location", tok, bad), 400, "bad location "+bad)
	}
}

func testSuggestionsAPI(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	prefs := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 50, Genders: []string{"woman"}}
	me := mkUser(t, st, "me", 30, "man", 48.85, 2.35, prefs)
	w1 := mkUser(t, st, "w1", 28, "woman", 48.86, 2.35, nil)
	w2 := mkUser(t, st, "w2", 29, "woman", 48.95, 2.35, nil)
	tok := token(t, me)
	r := a.do("GET", "/api/matches/suggestions?limit=10", tok, "")
	expect(t, r, 200, "suggestions")
	h := r.hdr
	if h.Get("Cache-Control") != "private, no-cache" || h.Get("CDN-Cache-Control") != "max-age=120" || h.Get("Vary") != "Authorization" ||
		h.Get("Cache-Tags") != fmt.Sprintf("suggestions:%d deck:%d-%d deck:%d-%d", me, me, w1, me, w2) ||
		h.Get(contract.DeckCards) != fmt.Sprintf("%d %d", w1, w2) || h.Get(contract.DeckNext) != "" {
		t.Fatalf("suggestion headers %v", h)
	}
	var out struct {
		Suggestions []map[string]any `json:"suggestions"`
	}
	r.json(t, &out)
	if len(out.Suggestions) != 2 || out.Suggestions[0]["id"].(float64) != float64(w1) || out.Suggestions[1]["id"].(float64) != float64(w2) {
		t.Fatalf("suggestions %v", out)
	}
	s0 := out.Suggestions[0]
	if _, ok := s0["photos"]; ok {
		t.Fatalf("photos present without asking: %v", s0)
	}
	if s0["distance_km"].(float64) != 1 || len([]rune(s0["bio"].(string))) > origin.ListBioRunes || !strings.HasSuffix(s0["bio"].(string), "…") {
		t.Fatalf("shaping: %v", s0)
	}
	r = a.do("GET", "/api/matches/suggestions?fields=id,photos&limit=1", tok, "")
	expect(t, r, 200, "fields")
	out.Suggestions = nil
	r.json(t, &out)
	if len(out.Suggestions) != 1 || len(out.Suggestions[0]) != 2 || out.Suggestions[0]["photos"] == nil {
		t.Fatalf("fields selection: %v", out)
	}
	// Pages by cursor: a full page names the next one, which starts past
	// its last card; the page past the last card is empty and names none.
	var page struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
		Next string `json:"next"`
	}
	var seen []int64
	for q := "limit=1"; ; {
		r = a.do("GET", "/api/matches/suggestions?"+q, tok, "")
		expect(t, r, 200, "page "+q)
		page.Next, page.Suggestions = "", nil
		r.json(t, &page)
		for _, c := range page.Suggestions {
			seen = append(seen, c.ID)
		}
		if r.hdr.Get(contract.DeckNext) != page.Next {
			t.Fatalf("%s: %s %q, body's next %q", q, contract.DeckNext, r.hdr.Get(contract.DeckNext), page.Next)
		}
		if page.Next == "" {
			break
		}
		if len(seen) > 3 {
			t.Fatalf("pages never end: %v", seen)
		}
		q = "limit=1&after=" + page.Next
	}
	if !slices.Equal(seen, []int64{w1, w2}) {
		t.Fatalf("cards by page %v, want %d then %d", seen, w1, w2)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=1;DROP", "fields=id,password",
		"after=x", "after=1_", "after=_1", "after=-1_2", "after=NaN_2", "after=1_0", "after=1_x", "after=Inf_3"} {
		expect(t, a.do("GET", "/api/matches/suggestions?"+q, tok, ""), 400, q)
	}
	// A user without a location gets a clear 409.
	nl, _ := st.CreateUser(context.Background(), store.NewUser{Profile: store.ProfileUpdate{Name: "x", Age: 30, Gender: "man", Active: true}})
	expect(t, a.do("GET", "/api/matches/suggestions", token(t, nl), ""), 409, "no location")
}

func testSwipeChat(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
	eve := mkUser(t, st, "eve", 30, "woman", 1, 1.02, nil)
	ta, tb, te := token(t, ann), token(t, bob), token(t, eve)
	r := a.do("POST", "/api/swipes", ta, fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, bob))
	expect(t, r, 201, "like")
	// No match yet: only the swiper's deck pages holding the target changed.
	if want := fmt.Sprintf("deck:%d-%d", ann, bob); r.hdr.Get("Spark-Purge") != want {
		t.Fatalf("swipe purge %q want %q", r.hdr.Get("Spark-Purge"), want)
	}
	expect(t, a.do("POST", "/api/swipes", ta, fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, bob)), 200, "repeat like")
	expect(t, a.do("POST", "/api/swipes", ta, fmt.Sprintf(`{"target_id":%d,"direction":"pass"}`, bob)), 409, "changed swipe")
	expect(t, a.do("POST", "/api/swipes", ta, fmt.Sprintf(`{"target_id":%d,"direction":"like"}`, ann)), 400, "self swipe")
	expect(t, a.do("POST", "/api/swipes", ta, `{"target_id":99999,"direction":"like"}`), 404, "missing target")
	r = a.do("POST", "/api/swipes", tb, fmt.Sprintf(`{"target_id":%d,"direction":"superlike"}`, ann))
	expect(t, r, 201, "mutual like")
	var sw struct {
		Match *struct {
			ID             int64 `json:"id"`
			PeerID         int64 `json:"peer_id"`
			ConversationID int64 `json:"conversation_id"`
		} `json:"match"`
	}
	// The match: the swiper's deck and both match lists (with them, the
	// inboxes and message lists tagged with them).
	if want := fmt.Sprintf("deck:%d-%d matches:%d matches:%d", bob, ann, bob, ann); r.hdr.Get("Spark-Purge") != want {
		t.Fatalf("matching swipe purge %q want %q", r.hdr.Get("Spark-Purge"), want)
	}
	r.json(t, &sw)
	if sw.Match == nil || sw.Match.PeerID != ann || sw.Match.ConversationID == 0 {
		t.Fatalf("mutual like body %s", r.body)
	}
	conv := sw.Match.ConversationID
	r = a.do("GET", "/api/matches", ta, "")
	expect(t, r, 200, "matches")
	if !strings.Contains(r.body, fmt.Sprintf(`"peer_id":%d`, bob)) {
		t.Fatalf("matches body %s", r.body)
	}
	base := fmt.Sprintf("/api/conversations/%d", conv)
	var first int64
	for i := 0; i < 5; i++ {
		r = a.do("POST", base+"/messages", ta, fmt.Sprintf(`{"body":"hello %d","client_msg_id":"c%d"}`, i, i))
		expect(t, r, 201, "send")
		if want := fmt.Sprintf("conversation:%d conversations:%d conversations:%d", conv, ann, bob); i == 0 && r.hdr.Get("Spark-Purge") != want {
			t.Fatalf("send purge %q want %q", r.hdr.Get("Spark-Purge"), want)
		}
		if i == 0 {
			var m store.Message
			r.json(t, &m)
			first = m.ID
		}
	}
	r = a.do("POST", base+"/messages", ta, `{"body":"hello 0 again","client_msg_id":"c0"}`)
	expect(t, r, 200, "idempotent resend")
	if p := r.hdr.Get("Spark-Purge"); p != "" {
		t.Fatalf("a resend changed nothing, purged %q", p)
	}
	var again store.Message
	r.json(t, &again)
	if again.ID != first || again.Body != "hello 0" {
		t.Fatalf("resend returned %+v", again)
	}
	var page struct {
		Messages   []store.Message `json:"messages"`
		NextBefore *int64          `json:"next_before"`
	}
	r = a.do("GET", base+"/messages?limit=3", tb, "")
	expect(t, r, 200, "history")
	r.json(t, &page)
	if len(page.Messages) != 3 || page.NextBefore == nil || page.Messages[0].Body != "hello 4" {
		t.Fatalf("page 1 %s", r.body)
	}
	next := *page.NextBefore
	page.Messages, page.NextBefore = nil, nil
	a.do("GET", fmt.Sprintf("%s/messages?limit=3&before=%d", base, next), tb, "").json(t, &page)
	if len(page.Messages) != 2 || page.NextBefore != nil || page.Messages[1].ID != first {
		t.Fatalf("page 2 %+v", page)
	}
	var inbox struct {
		Conversations []store.ConversationSummary `json:"conversations"`
	}
	a.do("GET", "/api/conversations", tb, "").json(t, &inbox)
	if len(inbox.Conversations) != 1 || inbox.Conversations[0].UnreadCount != 5 || inbox.Conversations[0].PeerID != ann {
		t.Fatalf("inbox %+v", inbox)
	}
	expect(t, a.do("POST", base+"/read", tb, fmt.Sprintf(`{"message_id":%d}`, first)), 204, "mark read")
	inbox.Conversations = nil
	a.do("GET", "/api/conversations", tb, "").json(t, &inbox)
	if inbox.Conversations[0].UnreadCount != 4 {
		t.Fatalf("unread after mark %+v", inbox.Conversations[0])
	}
	// Outsiders see nothing.
	expect(t, a.do("GET", base+"/messages", te, ""), 404, "outsider history")
	expect(t, a.do("POST", base+"/messages", te, `{"body":"hi","client_msg_id":"e1"}`), 404, "outsider send")
	expect(t, a.do("POST", base+"/read", te, fmt.Sprintf(`{"message_id":%d}`, first)), 404, "outsider read")
	expect(t, a.do("DELETE", fmt.Sprintf("/api/matches/%d", sw.Match.ID), te, ""), 404, "outsider unmatch")
	// Unmatch closes the conversation.
	r = a.do("DELETE", fmt.Sprintf("/api/matches/%d", sw.Match.ID), ta, "")
	expect(t, r, 204, "unmatch")
	if !strings.Contains(r.hdr.Get("Spark-Purge"), fmt.Sprintf("matches:%d", bob)) {
		t.Fatalf("unmatch purge %q", r.hdr.Get("Spark-Purge"))
	}
	expect(t, a.do("GET", base+"/messages", tb, ""), 404, "history after unmatch")
	// Block hides from suggestions.
	expect(t, a.do("POST", fmt.Sprintf("/api/users/%d/block", eve), ta, ""), 204, "block")
}

func testBadInput(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	me := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	tok := token(t, me)
	big := `{"body":"` + strings.Repeat("a", origin.MaxBodyBytes) + `","client_msg_id":"x"}`
	expect(t, a.do("POST", "/api/conversations/1/messages", tok, big), 413, "body over 1 MB")
	expect(t, a.do("POST", "/api/swipes", tok, `{"target_id":2,"direction":"like","extra":1}`), 400, "unknown field")
	expect(t, a.do("POST", "/api/swipes", tok, `{"target_id":2,"direction":"like"}{}`), 400, "trailing data")
	expect(t, a.do("POST", "/api/swipes", tok, `{"target_id":"2; DROP TABLE users","direction":"like"}`), 400, "SQL-looking id")
	expect(t, a.do("POST", "/api/swipes", tok, `{"target_id":2,"direction":"like' OR 1=1 --"}`), 400, "SQL-looking direction")
	expect(t, a.do("POST", "/api/swipes", tok, `not json`), 400, "not JSON")
	expect(t, a.do("POST", "/api/swipes", tok, `{"target_id":2,"direction":"like"}`, "Content-Type", "text/plain"), 415, "wrong media type")
	expect(t, a.do("GET", "/api/conversations/1%20OR%201=1/messages", tok, ""), 400, "SQL-looking path id")
	expect(t, a.do("GET", "/api/conversations/1/messages?before=x", tok, ""), 400, "bad before")
	expect(t, a.do("GET", "/api/conversations/1/messages?limit=1000", tok, ""), 400, "limit too big")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, `{"name":"","age":30,"gender":"woman"}`), 400, "empty name")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, `{"name":"x","age":17,"gender":"woman"}`), 400, "under age")
	expect(t, a.do("PUT", "/api/users/me/profile", tok, `{"name":"x","age":30,"gender":"woman","photos":["javascript:alert(1)"]}`), 400, "bad photo URL")
	expect(t, a.do("GET", "/api/nope", tok, ""), 404, "unknown route")
	r := a.do("DELETE", "/api/swipes", tok, "")
	expect(t, r, 405, "wrong method")
	if r.hdr.Get("Allow") == "" {
		t.Fatal("405 without Allow")
	}
	noFollow := *a.srv.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noFollow.Get(a.srv.URL + "/api//matches")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if (res.StatusCode != http.StatusMovedPermanently && res.StatusCode != http.StatusTemporaryRedirect) || res.Header.Get("Location") != "/api/matches" {
		t.Fatalf("unclean path: %d %v", res.StatusCode, res.Header)
	}
	// Nothing was half-written.
	p, _ := st.GetProfile(context.Background(), me)
	if p.Name != "ann" || p.Age != 30 {
		t.Fatalf("profile changed by rejected requests: %+v", p)
	}
	ms, _ := st.ListMatches(context.Background(), me)
	if len(ms) != 0 {
		t.Fatalf("matches appeared: %+v", ms)
	}
}

func testOps(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	me := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	expect(t, a.do("GET", "/healthz", "", ""), 200, "healthz")
	expect(t, a.do("GET", "/readyz", "", ""), 200, "readyz")
	a.do("GET", "/api/matches/suggestions", token(t, me), "")
	a.do("POST", "/api/swipes", token(t, me), `{"target_id":99999,"direction":"like"}`)
	r := a.do("GET", "/metrics", "", "")
	expect(t, r, 200, "metrics")
	for _, want := range []string{"spark_matching_duration_seconds_count", "spark_swipe_response_seconds_count",
		`spark_origin_http_request_duration_seconds_count{code="200",method="GET",route="/api/matches/suggestions"}`,
		"go_goroutines"} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if _, ok := st.(*postgis.Store); ok {
		for _, want := range []string{`spark_origin_db_pool_connections{pool="primary",state="idle"}`, `spark_origin_db_pool_max_connections{pool="primary"} 8`} {
			if !strings.Contains(r.body, want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
		// Readiness follows the database.
		st.Close()
		expect(t, a.do("GET", "/readyz", "", ""), 503, "readyz with the database gone")
	}
}

// TestReplicaRouting points the replica at the same database: both pools are
// used and reported, reads and writes work. The user is made by another
// store: made through this one, her reads would stay on the primary (the
// "replica" has no replay position, so it never shows her creation).
func TestReplicaRouting(t *testing.T) {
	other := pgtest.Open(t, "test_origin_api")
	url := pgtest.SchemaURL(t, "test_origin_api")
	s, err := postgis.Open(context.Background(), postgis.Config{URL: url, ReplicaURL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := newAPI(t, s)
	id := mkUser(t, other, "ann", 30, "woman", 1, 1, nil)
	expect(t, a.do("GET", fmt.Sprintf("/api/users/%d/profile", id), token(t, id), ""), 200, "profile via replica")
	stats := s.PoolStats()
	// The read was neither held back for a write nor failed over: the
	// replica served it.
	if len(stats) != 2 || stats[1].Name != "replica" || stats[1].AcquireCount == 0 || stats[1].Behind != 0 || stats[1].Fallbacks != 0 {
		t.Fatalf("replica pool unused: %+v", stats)
	}
	r := a.do("GET", "/metrics", "", "")
	if !strings.Contains(r.body, `pool="replica"`) {
		t.Fatal("metrics lack the replica pool")
	}
}
