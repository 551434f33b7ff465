package origin

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
)

// The fuzz targets run their seed corpus as ordinary tests; `go test -fuzz`
// explores further. Every decoder must either reject input with a
// requestError (a clear 4xx) or return a value that satisfies its invariants.

// fuzzDecoder is a decoder's fuzz target: seeds are its corpus; every
// input is either refused with a requestError or decoded to a value check
// accepts (check gets the input too).
func fuzzDecoder[T any](f *testing.F, seeds []string, decode func([]byte) (T, error), check func(t *testing.T, in []byte, v T)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decode(data)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error is not a requestError: %T %v", err, err)
			}
			return
		}
		check(t, data, v)
	})
}

func FuzzDecodeProfile(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"name":"Ann","age":30,"gender":"woman","bio":"hi","photos":["https://x.example/a.jpg"]}`,
		`{"name":"Ann","age":30,"gender":"woman","bio":"hi","photos":["/api/users/1/photos/0123456789abcdef0123456789abcdef.png"]}`,
		`{"name":"Ann","age":30,"gender":"woman","photos":["/api/users/2/photos/0123456789abcdef0123456789abcdef.jpg"]}`,
		`{"name":"Ann","age":30,"gender":"woman","photos":["//evil.example/api/users/1/photos/0123456789abcdef0123456789abcdef.jpg"]}`,
		`{"name":"Ann","age":30,"gender":"woman","active":false}`,
		`{"name":"","age":30,"gender":"woman"}`, `{"name":"x","age":17,"gender":"man"}`,
		`{"name":"x","age":30,"gender":"robot"}`, `{"name":"x","age":30,"gender":"man","x":1}`,
		`{"name":"Robert'); DROP TABLE users;--","age":30,"gender":"man"}`, `{"name":"\u0000","age":30,"gender":"man"}`,
		`{"name":"x","age":1e400,"gender":"man"}`, `[]`, `null`, ``, `{`, `{"name":"x","age":30,"gender":"man"} {}`,
		`{"name":"x","age":30,"gender":"man","photos":["javascript:alert(1)"]}`,
		`{"name":"x","age":30,"gender":"man","photos":["/api/users/1/photos/0123456789abcdef0123456789abcdef.jpg","/api/users/1/photos/../x.jpg"]}`,
	}, func(data []byte) (store.ProfileUpdate, error) { return DecodeProfile(1, data) }, func(t *testing.T, data []byte, p store.ProfileUpdate) {
		if p.Age < MinAge || p.Age > MaxAge || !store.ValidGender(p.Gender) || strings.TrimSpace(p.Name) == "" ||
			utf8.RuneCountInString(p.Name) > MaxNameRunes || utf8.RuneCountInString(p.Bio) > MaxBioRunes ||
			!utf8.ValidString(p.Name) || !utf8.ValidString(p.Bio) || len(p.Photos) != 0 {
			t.Fatalf("accepted invalid profile %+v", p)
		}
		// Whatever was accepted names only user 1's own uploads.
		var req ProfileRequest
		if err := json.Unmarshal(data, &req); err == nil {
			for _, ph := range req.Photos {
				if !strings.HasPrefix(ph, "/api/users/1/photos/") || !ValidPhotoName(strings.TrimPrefix(ph, "/api/users/1/photos/")) {
					t.Fatalf("accepted photo %q", ph)
				}
			}
		}
	})
}

func FuzzDecodeLocation(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"lat":1,"lng":2}`, `{"lat":-90,"lng":180}`, `{"lat":90.0001,"lng":0}`, `{"lat":"NaN","lng":0}`,
		`{"lat":1e309,"lng":0}`, `{"lat":1}`, `{"lat":null,"lng":null}`, `{"lat":1,"lng":2,"z":0}`, `{"lat":-0,"lng":-180}`,
	}, DecodeLocation, func(t *testing.T, _ []byte, p store.Point) {
		if math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180 {
			t.Fatalf("accepted invalid point %+v", p)
		}
	})
}

func FuzzDecodePreferences(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"min_age":18,"max_age":30,"max_distance_km":10,"genders":["woman"]}`,
		`{"min_age":30,"max_age":18,"max_distance_km":10,"genders":["woman"]}`, `{"min_age":18,"max_age":30,"max_distance_km":0,"genders":["man"]}`,
		`{"min_age":18,"max_age":30,"max_distance_km":10,"genders":[]}`, `{"min_age":18,"max_age":99999999999,"max_distance_km":10,"genders":["man"]}`,
	}, DecodePreferences, func(t *testing.T, _ []byte, p store.Preferences) {
		if p.MinAge < MinAge || p.MaxAge > MaxAge || p.MinAge > p.MaxAge || p.MaxDistanceKm < 1 || p.MaxDistanceKm > MaxDistanceKm || len(p.Genders) == 0 {
			t.Fatalf("accepted invalid preferences %+v", p)
		}
		for _, g := range p.Genders {
			if !store.ValidGender(g) {
				t.Fatalf("accepted gender %q", g)
			}
		}
	})
}

func FuzzDecodeSwipe(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"target_id":2,"direction":"like"}`, `{"target_id":2,"direction":"superlike"}`, `{"target_id":0,"direction":"pass"}`,
		`{"target_id":-1,"direction":"like"}`, `{"target_id":"2","direction":"like"}`, `{"target_id":9223372036854775808,"direction":"like"}`,
		`{"target_id":2,"direction":"LIKE"}`, `{"target_id":2.5,"direction":"like"}`,
	}, DecodeSwipe, func(t *testing.T, _ []byte, s SwipeRequest) {
		if s.TargetID <= 0 || !s.Direction.Valid() {
			t.Fatalf("accepted invalid swipe %+v", s)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"body":"hi","client_msg_id":"a"}`, `{"body":"","client_msg_id":"a"}`, `{"body":"hi"}`,
		`{"body":"hi","client_msg_id":"` + strings.Repeat("x", 65) + `"}`, `{"body":"\ud800","client_msg_id":"a"}`,
	}, DecodeMessage, func(t *testing.T, _ []byte, m MessageRequest) {
		if strings.TrimSpace(m.Body) == "" || utf8.RuneCountInString(m.Body) > MaxMessageRunes || m.ClientMsgID == "" ||
			len(m.ClientMsgID) > MaxClientMsgBytes || !utf8.ValidString(m.Body) {
			t.Fatalf("accepted invalid message %+v", m)
		}
	})
}

func FuzzDecodeSendBatch(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"messages":[{"token":"t","conversation_id":1,"body":"hi","client_msg_id":"a"}]}`, `{"messages":[]}`, `{"messages":null}`,
		`{"messages":[{"token":1}]}`, `{"messages":[{}],"x":1}`, `{"messages":[{"body":"\ud800"}]}`, `[]`,
	}, DecodeSendBatch, func(t *testing.T, _ []byte, req SendBatchRequest) {
		if len(req.Messages) == 0 || len(req.Messages) > MaxSendBatchMessages {
			t.Fatalf("accepted a batch of %d messages", len(req.Messages))
		}
	})
}

func FuzzDecodeRead(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"message_id":1}`, `{"message_id":0}`, `{"message_id":"1"}`, `{}`,
	}, DecodeRead, func(t *testing.T, _ []byte, id int64) {
		if id <= 0 {
			t.Fatalf("accepted message id %d", id)
		}
	})
}

func FuzzIfMatch(f *testing.F) {
	for _, s := range []string{`"u1-v2"`, `*`, `W/"u1-v2"`, `"u2-v2"`, `"u1-v2", "u1-v3"`, `"u1-v0"`, `"u1-v2x"`, `u1-v2`, `"u01-v2"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		v, err := matchIfMatch(h, 1)
		if err != nil {
			return
		}
		if v < 0 || (v == 0 && strings.TrimSpace(h) != "*") {
			t.Fatalf("If-Match %q gave version %d", h, v)
		}
		if v > 0 && !strings.Contains(h, profileETag(store.Profile{ID: 1, Version: v})) {
			t.Fatalf("If-Match %q matched version %d it does not list", h, v)
		}
	})
}

// FuzzSwipeEndpoint drives the whole handler with arbitrary bodies: the
// answer is always a deliberate status, never a 5xx.
func FuzzSwipeEndpoint(f *testing.F) {
	for _, s := range []string{`{"target_id":2,"direction":"like"}`, `{"target_id":1,"direction":"like"}`, `{"target_id":3,"direction":"pass"}`,
		`{"target_id":2,"direction":"pass"}`, `{`, strings.Repeat("[", 10000)} {
		f.Add([]byte(s))
	}
	st := memory.New()
	for i := 0; i < 3; i++ {
		if _, err := st.CreateUser(context.Background(), store.NewUser{Profile: store.ProfileUpdate{Name: "u", Age: 30, Gender: "man", Active: true}}); err != nil {
			f.Fatal(err)
		}
	}
	auth, _ := NewAuthenticator("fuzz-secret", nil, nil)
	srv, err := NewServer(ServerOptions{Store: st, Auth: auth})
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := IssueToken("fuzz-secret", 1, time.Hour, time.Now())
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/swipes", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}

func FuzzDecodeDevice(f *testing.F) {
	hex64 := strings.Repeat("ab01", 16)
	fuzzDecoder(f, []string{
		`{"platform":"ios","token":"` + hex64 + `","app_id":"app.spark","locale":"en","previews":true}`,
		`{"platform":"android","token":"dGVzdA:APA91b-x_y","app_id":"app.spark","locale":"es-MX"}`,
		`{"platform":"ios","token":"zz` + hex64[2:] + `","app_id":"app.spark"}`, `{"platform":"ios","token":"abc","app_id":"a"}`,
		`{"platform":"web","token":"x","app_id":"a"}`, `{"platform":"android","token":"a b","app_id":"a"}`,
		`{"platform":"android","token":"x","app_id":""}`, `{"platform":"android","token":"x","app_id":"a","locale":"e"}`,
		`{"platform":"android","token":"x","app_id":"a","locale":"en_US"}`, `{"platform":"android","token":"x","app_id":"a","x":1}`,
		`{"platform":"android","token":"x","app_id":"a\u0000"}`, `[]`, `null`, ``,
	}, DecodeDevice, func(t *testing.T, _ []byte, d store.Device) {
		if !d.Platform.Valid() || d.Token == "" || len(d.Token) > MaxDeviceTokenBytes || d.AppID == "" || len(d.AppID) > MaxAppIDBytes ||
			len(d.Locale) < 2 || len(d.Locale) > MaxLocaleBytes || !allBytes(d.Token, isFCMTokenByte) ||
			!allBytes(d.AppID, isAppIDByte) || !allBytes(d.Locale, isLocaleByte) {
			t.Fatalf("accepted invalid device %+v", d)
		}
		if d.Platform == store.IOS && (!allBytes(d.Token, isHexByte) || len(d.Token) < 32) {
			t.Fatalf("accepted invalid APNs token %q", d.Token)
		}
	})
}

func FuzzDecodeDeviceToken(f *testing.F) {
	fuzzDecoder(f, []string{`{"token":"abc"}`, `{"token":""}`, `{"token":"a b"}`, `{"token":1}`, `{}`, `{"token":"x","y":2}`},
		DecodeDeviceToken, func(t *testing.T, _ []byte, tok string) {
			if tok == "" || len(tok) > MaxDeviceTokenBytes || !allBytes(tok, isFCMTokenByte) {
				t.Fatalf("accepted token %q", tok)
			}
		})
}
