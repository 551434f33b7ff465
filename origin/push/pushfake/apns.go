package pushfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNs is a fake Apple push service: HTTP/2 over TLS, token-based
// authentication. It accepts POST /3/device/<token> with a valid ES256
// provider token and the headers APNs requires, as APNs does.
type APNs struct {
	server
	key *ecdsa.PrivateKey
	// KeyID and TeamID are what provider tokens must name (kid, iss).
	KeyID, TeamID string
	// Topic is the apns-topic every request must carry.
	Topic string

	verifiedMu sync.Mutex
	verified   map[string]time.Time // provider token -> its iat, once checked
}

// NewAPNs starts a fake APNs; Close stops it.
func NewAPNs(topic string) (*APNs, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pushfake: APNs key: %w", err)
	}
	a := &APNs{key: key, KeyID: "FAKEKEY123", TeamID: "FAKETEAM01", Topic: topic,
		verified: make(map[string]time.Time)}
	a.server = startServer(http.HandlerFunc(a.serve))
	return a, nil
}

// Key returns the signing key providers must use.
func (a *APNs) Key() *ecdsa.PrivateKey { return a.key }

// KeyPEM returns the signing key as a .p8 file's contents.
func (a *APNs) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, fmt.Errorf("pushfake: encode APNs key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func (a *APNs) answer(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"reason": reason}
	if status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (a *APNs) bad(w http.ResponseWriter, status int, reason, why string) {
	a.reject(reason + ": " + why)
	a.answer(w, status, reason)
}

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		a.bad(w, http.StatusBadRequest, "BadRequest", "not HTTP/2: "+r.Proto)
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost || !ok {
		a.bad(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path)
		return
	}
	if len(token) < 32 || strings.Trim(token, "0123456789abcdefABCDEF") != "" {
		a.bad(w, http.StatusBadRequest, "BadDeviceToken", "token is not hex")
		return
	}
	if why := a.checkProviderToken(r.Header.Get("authorization")); why != "" {
		a.bad(w, http.StatusForbidden, "InvalidProviderToken", why)
		return
	}
	if r.Header.Get("apns-topic") != a.Topic {
		a.bad(w, http.StatusBadRequest, "DeviceTokenNotForTopic", "apns-topic "+r.Header.Get("apns-topic"))
		return
	}
	rec := Received{Token: token, Priority: r.Header.Get("apns-priority"), PushType: r.Header.Get("apns-push-type"),
		CollapseID: r.Header.Get("apns-collapse-id")}
	if rec.PushType != "alert" && rec.PushType != "background" {
		a.bad(w, http.StatusBadRequest, "InvalidPushType", "apns-push-type "+rec.PushType)
		return
	}
	if rec.Priority != "10" && rec.Priority != "5" || rec.PushType == "background" && rec.Priority != "5" {
		a.bad(w, http.StatusBadRequest, "BadPriority", "apns-priority "+rec.Priority+" with "+rec.PushType)
		return
	}
	exp, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64)
	if err != nil || exp < 0 {
		a.bad(w, http.StatusBadRequest, "BadExpirationDate", "apns-expiration "+r.Header.Get("apns-expiration"))
		return
	}
	rec.Expiration = time.Unix(exp, 0)
	if len(rec.CollapseID) > 64 {
		a.bad(w, http.StatusBadRequest, "BadCollapseId", "longer than 64 bytes")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil || len(body) > 4096 {
		a.bad(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "over 4096 bytes")
		return
	}
	if why := decodeAPNsBody(body, &rec); why != "" {
		a.bad(w, http.StatusBadRequest, "BadPayload", why)
		return
	}
	if f := a.failureFor(); f != nil {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		a.answer(w, f.Status, f.Reason)
		return
	}
	if a.isDead(token) {
		a.answer(w, http.StatusGone, "Unregistered")
		return
	}
	a.accept(rec)
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	w.WriteHeader(http.StatusOK)
}

// checkProviderToken verifies the ES256 JWT: kid, iss, a recent iat. A
// token verified once is remembered (as APNs does: a provider reuses one
// for up to an hour), its age still checked.
func (a *APNs) checkProviderToken(h string) string {
	raw, ok := strings.CutPrefix(h, "bearer ")
	if !ok {
		return "authorization is not a bearer token"
	}
	a.verifiedMu.Lock()
	iat, seen := a.verified[raw]
	a.verifiedMu.Unlock()
	if seen {
		if time.Since(iat) > time.Hour {
			return "provider token: older than an hour"
		}
		return ""
	}
	var claims jwt.MapClaims
	t, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != a.KeyID {
			return nil, fmt.Errorf("kid %v", t.Header["kid"])
		}
		return &a.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(a.TeamID), jwt.WithIssuedAt())
	if err != nil || !t.Valid {
		return fmt.Sprintf("provider token: %v", err)
	}
	issued, err := claims.GetIssuedAt()
	if err != nil || issued == nil || time.Since(issued.Time) > time.Hour {
		return "provider token: iat missing or older than an hour"
	}
	a.verifiedMu.Lock()
	a.verified[raw] = issued.Time
	a.verifiedMu.Unlock()
	return ""
}

// decodeAPNsBody checks the payload: an aps dictionary, an alert with a
// title or body for alert pushes, content-available 1 and no alert for
// background pushes; the other top-level keys are the app's strings.
func decodeAPNsBody(body []byte, rec *Received) string {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(body, &p); err != nil {
		return "not a JSON object: " + err.Error()
	}
	var aps struct {
		Alert *struct {
			Title string `json:"title"`
			Body  string `json:"body"`
		} `json:"alert"`
		ContentAvailable int `json:"content-available"`
	}
	if err := json.Unmarshal(p["aps"], &aps); err != nil {
		return "no aps dictionary"
	}
	switch {
	case rec.PushType == "background" && (aps.ContentAvailable != 1 || aps.Alert != nil):
		return "a background push needs content-available 1 and no alert"
	case rec.PushType == "alert" && (aps.Alert == nil || aps.Alert.Title == "" && aps.Alert.Body == ""):
		return "an alert push needs an alert"
	}
	if aps.Alert != nil {
		rec.Title, rec.Body = aps.Alert.Title, aps.Alert.Body
	}
	rec.Data = make(map[string]string)
	for k, v := range p {
		if k == "aps" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "custom key " + k + " is not a string"
		}
		rec.Data[k] = s
	}
	return ""
}
