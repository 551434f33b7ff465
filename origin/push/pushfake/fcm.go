package pushfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FCM is a fake Firebase Cloud Messaging HTTP v1 API with its OAuth 2
// token endpoint: POST /token takes a service account's RS256 JWT
// assertion (RFC 7523) and answers an access token; POST
// /v1/projects/<project>/messages:send takes a message with that token.
type FCM struct {
	server
	key *rsa.PrivateKey
	// Project is the project id of the service account.
	Project string
	// ClientEmail is the service account.
	ClientEmail string

	tokMu  sync.Mutex
	tokens map[string]bool
	minted int
}

// NewFCM starts a fake FCM; Close stops it.
func NewFCM(project string) (*FCM, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("pushfake: FCM service account key: %w", err)
	}
	f := &FCM{key: key, Project: project, ClientEmail: "push@" + project + ".iam.gserviceaccount.com",
		tokens: make(map[string]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/{op}", f.serveSend)
	f.server = startServer(mux)
	return f, nil
}

// TokensMinted is how many access tokens the token endpoint issued.
func (f *FCM) TokensMinted() int {
	f.tokMu.Lock()
	defer f.tokMu.Unlock()
	return f.minted
}

// ServiceAccountJSON is a service account key file whose token_uri is the
// fake's token endpoint.
func (f *FCM) ServiceAccountJSON() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		return nil, fmt.Errorf("pushfake: encode service account key: %w", err)
	}
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": f.Project, "private_key_id": "fakekey1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": f.ClientEmail, "client_id": "1", "token_uri": f.srv.URL + "/token",
	})
	if err != nil {
		return nil, fmt.Errorf("pushfake: encode service account: %w", err)
	}
	return b, nil
}

func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(why string) {
		f.reject("token: " + why)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": why})
	}
	if err := r.ParseForm(); err != nil {
		oauthErr("form: " + err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthErr("grant_type " + g)
		return
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), &claims, func(t *jwt.Token) (any, error) {
		return &f.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(f.ClientEmail), jwt.WithAudience(f.srv.URL+"/token"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		oauthErr("assertion: " + err.Error())
		return
	}
	if scope, _ := claims["scope"].(string); !strings.Contains(scope, "https://www.googleapis.com/auth/firebase.messaging") {
		oauthErr("scope " + scope)
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ya29.fake-" + hex.EncodeToString(b)
	f.tokMu.Lock()
	f.tokens[tok] = true
	f.minted++
	f.tokMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

var ttlRE = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)

func (f *FCM) answerError(w http.ResponseWriter, status int, st, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := map[string]any{"code": status, "message": st, "status": st}
	if code != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("project") != f.Project || r.PathValue("op") != "messages:send" {
		f.reject("path " + r.URL.Path)
		f.answerError(w, http.StatusNotFound, "NOT_FOUND", "")
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.tokMu.Lock()
	okTok := f.tokens[tok]
	f.tokMu.Unlock()
	if !okTok {
		f.reject("access token not issued by the token endpoint")
		f.answerError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "")
		return
	}
	var m struct {
		Message struct {
			Token        string                        `json:"token"`
			Notification *struct{ Title, Body string } `json:"notification"`
			Data         map[string]string             `json:"data"`
			Android      *struct {
				Priority    string `json:"priority"`
				CollapseKey string `json:"collapse_key"`
				TTL         string `json:"ttl"`
			} `json:"android"`
		} `json:"message"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&m); err != nil {
		f.reject("body: " + err.Error())
		f.answerError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
		return
	}
	msg := m.Message
	why := ""
	switch {
	case msg.Token == "":
		why = "message.token missing"
	case msg.Android == nil || msg.Android.Priority != "high" && msg.Android.Priority != "normal":
		why = "android.priority must be high or normal"
	case !ttlRE.MatchString(msg.Android.TTL):
		why = "android.ttl " + msg.Android.TTL + " is not a duration like 3600s"
	}
	if why != "" {
		f.reject(why)
		f.answerError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
		return
	}
	if fl := f.failureFor(); fl != nil {
		if fl.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(fl.RetryAfter))
		}
		st := map[int]string{429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[fl.Status]
		f.answerError(w, fl.Status, st, fl.Reason)
		return
	}
	if f.isDead(msg.Token) {
		f.answerError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED")
		return
	}
	ttl, _ := time.ParseDuration(msg.Android.TTL)
	rec := Received{Token: msg.Token, Priority: msg.Android.Priority, PushType: "data", CollapseID: msg.Android.CollapseKey,
		Expiration: time.Now().Add(ttl), Data: msg.Data}
	if msg.Notification != nil {
		rec.PushType, rec.Title, rec.Body = "notification", msg.Notification.Title, msg.Notification.Body
	}
	f.accept(rec)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": "projects/" + f.Project + "/messages/1"})
}
