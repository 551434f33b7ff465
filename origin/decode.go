package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// Field limits enforced by the decoders.
const (
	MaxNameRunes      = 64
	MaxBioRunes       = 1000
	MaxPhotos         = 9
	MaxMessageRunes   = 4000
	MaxClientMsgBytes = 64
	MinAge            = 18
	MaxAge            = 120
	MaxDistanceKm     = 1000
)

// requestError is a 4xx the client can fix; status defaults to 400.
type requestError struct {
	status int
	code   string
	msg    string
}

// Error implements error.
func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, code: "invalid-request", msg: fmt.Sprintf(format, args...)}
}

// decodeJSON decodes exactly one JSON object from data into v, rejecting
// unknown fields and trailing data.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed JSON body: trailing data after the object")
	}
	return nil
}

// decodeRequest reads the request body (readBody's checks) and decodes it
// with decode.
func decodeRequest[T any](w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error)) (T, error) {
	data, err := readBody(w, r)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(data)
}

// readBody reads at most MaxBodyBytes and checks the content type.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyUpTo(w, r, MaxBodyBytes)
}

// readBodyUpTo reads at most limit bytes and checks the content type.
func readBodyUpTo(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported-media-type",
				msg: "Content-Type must be application/json"}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, code: "body-too-large",
				msg: fmt.Sprintf("request body exceeds %d bytes", limit)}
		}
		return nil, badRequest("reading body: %v", err)
	}
	return data, nil
}

// ProfileRequest is the body of PUT /api/users/me/profile. Photos may only
// name the user's own uploads (/api/users/{me}/photos/{name}, as GET lists
// them); they are skipped, since uploads change only through POST and
// DELETE /api/users/me/photos. Anything else, above all a URL on another
// host, is refused: a profile photo fetched from a host of the user's
// choosing would hand them every viewer's IP address.
type ProfileRequest struct {
	Name   string   `json:"name"`
	Age    int      `json:"age"`
	Gender string   `json:"gender"`
	Bio    string   `json:"bio"`
	Photos []string `json:"photos"`
	Active *bool    `json:"active"`
}

func checkText(field, s string, maxRunes int, required bool) error {
	if !utf8.ValidString(s) {
		return badRequest("%s is not valid UTF-8", field)
	}
	if strings.ContainsRune(s, 0) {
		return badRequest("%s contains a NUL character", field)
	}
	n := utf8.RuneCountInString(s)
	if required && strings.TrimSpace(s) == "" {
		return badRequest("%s is required", field)
	}
	if n > maxRunes {
		return badRequest("%s is longer than %d characters", field, maxRunes)
	}
	return nil
}

// DecodeProfile parses and validates the profile body user me sent.
func DecodeProfile(me int64, data []byte) (store.ProfileUpdate, error) {
	var req ProfileRequest
	if err := decodeJSON(data, &req); err != nil {
		return store.ProfileUpdate{}, err
	}
	if err := checkText("name", req.Name, MaxNameRunes, true); err != nil {
		return store.ProfileUpdate{}, err
	}
	if err := checkText("bio", req.Bio, MaxBioRunes, false); err != nil {
		return store.ProfileUpdate{}, err
	}
	if req.Age < MinAge || req.Age > MaxAge {
		return store.ProfileUpdate{}, badRequest("age must be between %d and %d", MinAge, MaxAge)
	}
	if !store.ValidGender(req.Gender) {
		return store.ProfileUpdate{}, badRequest("gender must be one of %s", strings.Join(store.AllGenders(), ", "))
	}
	if len(req.Photos) > MaxPhotos {
		return store.ProfileUpdate{}, badRequest("at most %d photos", MaxPhotos)
	}
	for i, p := range req.Photos {
		if !isUploadPathOf(me, p) {
			return store.ProfileUpdate{}, badRequest("photos[%d] is not one of your uploaded photos (%s…): upload photos with POST /api/users/me/photos",
				i, PhotoPath(me, ""))
		}
		// An uploaded photo, as GET /profile lists it: uploads are managed
		// by POST and DELETE /api/users/me/photos, so a profile sent back
		// as it was read keeps them.
	}
	active := true
	if req.Active != nil {
		active = *req.Active
	}
	return store.ProfileUpdate{Name: req.Name, Age: int16(req.Age), Gender: req.Gender, Bio: req.Bio, Photos: []string{}, Active: active}, nil
}

// DecodePreferences parses and validates a preferences body.
func DecodePreferences(data []byte) (store.Preferences, error) {
	var req struct {
		MinAge        int      `json:"min_age"`
		MaxAge        int      `json:"max_age"`
		MaxDistanceKm int      `json:"max_distance_km"`
		Genders       []string `json:"genders"`
	}
	if err := decodeJSON(data, &req); err != nil {
		return store.Preferences{}, err
	}
	if req.MinAge < MinAge || req.MaxAge > MaxAge || req.MinAge > req.MaxAge {
		return store.Preferences{}, badRequest("need %d <= min_age <= max_age <= %d", MinAge, MaxAge)
	}
	if req.MaxDistanceKm < 1 || req.MaxDistanceKm > MaxDistanceKm {
		return store.Preferences{}, badRequest("max_distance_km must be between 1 and %d", MaxDistanceKm)
	}
	if len(req.Genders) == 0 {
		return store.Preferences{}, badRequest("genders must name at least one of %s", strings.Join(store.AllGenders(), ", "))
	}
	seen := map[string]bool{}
	var genders []string
	for _, g := range req.Genders {
		if !store.ValidGender(g) {
			return store.Preferences{}, badRequest("unknown gender %q", g)
		}
		if !seen[g] {
			seen[g] = true
			genders = append(genders, g)
		}
	}
	return store.Preferences{MinAge: int16(req.MinAge), MaxAge: int16(req.MaxAge), MaxDistanceKm: int32(req.MaxDistanceKm), Genders: genders}, nil
}

// DecodeLocation parses and validates a location body {lat, lng}.
func DecodeLocation(data []byte) (store.Point, error) {
	var req struct {
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	}
	if err := decodeJSON(data, &req); err != nil {
		return store.Point{}, err
	}
	if req.Lat == nil || req.Lng == nil {
		return store.Point{}, badRequest("lat and lng are required")
	}
	if err := geocache.ValidatePoint(*req.Lat, *req.Lng); err != nil {
		return store.Point{}, badRequest("%v", err)
	}
	return store.Point{Lat: *req.Lat, Lng: *req.Lng}, nil
}

// SwipeRequest is the body of POST /api/swipes.
type SwipeRequest struct {
	TargetID  int64           `json:"target_id"`
	Direction store.Direction `json:"direction"`
}

// DecodeSwipe parses and validates a swipe body.
func DecodeSwipe(data []byte) (SwipeRequest, error) {
	var req SwipeRequest
	if err := decodeJSON(data, &req); err != nil {
		return SwipeRequest{}, err
	}
	if req.TargetID <= 0 {
		return SwipeRequest{}, badRequest("target_id must be a positive user id")
	}
	if !req.Direction.Valid() {
		return SwipeRequest{}, badRequest("direction must be like, pass or superlike")
	}
	return req, nil
}

// MessageRequest is the body of POST /api/conversations/{id}/messages.
type MessageRequest struct {
	Body        string `json:"body"`
	ClientMsgID string `json:"client_msg_id"`
}

// DecodeMessage parses and validates a message body.
func DecodeMessage(data []byte) (MessageRequest, error) {
	var req MessageRequest
	if err := decodeJSON(data, &req); err != nil {
		return MessageRequest{}, err
	}
	if err := req.check(); err != nil {
		return MessageRequest{}, err
	}
	return req, nil
}

// check validates a message's body and client_msg_id.
func (req MessageRequest) check() error {
	if err := checkText("body", req.Body, MaxMessageRunes, true); err != nil {
		return err
	}
	if req.ClientMsgID == "" || len(req.ClientMsgID) > MaxClientMsgBytes {
		return badRequest("client_msg_id is required, at most %d bytes", MaxClientMsgBytes)
	}
	return checkText("client_msg_id", req.ClientMsgID, MaxClientMsgBytes, true)
}

// DecodeRead parses the body of POST /api/conversations/{id}/read.
func DecodeRead(data []byte) (int64, error) {
	var req struct {
		MessageID int64 `json:"message_id"`
	}
	if err := decodeJSON(data, &req); err != nil {
		return 0, err
	}
	if req.MessageID <= 0 {
		return 0, badRequest("message_id must be a positive message id")
	}
	return req.MessageID, nil
}

// parseID parses a positive decimal id from a path segment.
func parseID(name, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%s %q is not a positive integer id", name, s)
	}
	return id, nil
}

// parseLimit reads an optional integer query parameter within [1, max].
func parseLimit(q url.Values, name string, def, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("%s must be an integer between 1 and %d", name, max)
	}
	return n, nil
}

// parseQuery parses the query string strictly: a malformed pair (for example
// one containing ';') is a 400, not silently dropped.
func parseQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	return q, nil
}
