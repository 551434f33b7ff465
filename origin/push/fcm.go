package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/spark-edge/spark/origin/store"
)

// FCM defaults.
const (
	// FCMURL is Firebase Cloud Messaging's HTTP v1 API.
	FCMURL = "https://fcm.googleapis.com"
	// fcmScope is the OAuth scope of the send API.
	fcmScope = "https://www.googleapis.com/auth/firebase.messaging"
)

// FCMOptions configures an FCM provider.
type FCMOptions struct {
	// URL is the API root (FCMURL, a fake).
	URL string
	// CredentialsJSON is the service account key file's contents: its
	// project_id names the project, its token_uri is where access tokens
	// come from (the OAuth 2 JWT bearer flow).
	CredentialsJSON []byte
	// Client carries the requests, to the API and to the token endpoint;
	// nil: http.DefaultClient's transport.
	Client *http.Client
}

// LoadFCMCredentials reads a service account key file.
func LoadFCMCredentials(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("push: read FCM service account: %w", err)
	}
	return b, nil
}

// FCM sends through Firebase Cloud Messaging HTTP v1.
type FCM struct {
	url     string
	project string
	client  *http.Client
}

var _ Provider = (*FCM)(nil)

// NewFCM returns an FCM provider; access tokens are fetched and renewed by
// golang.org/x/oauth2 as sends need them.
func NewFCM(o FCMOptions) (*FCM, error) {
	var sa struct {
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal(o.CredentialsJSON, &sa); err != nil || sa.ProjectID == "" {
		return nil, errors.New("push: FCM credentials: not a service account key with a project_id")
	}
	cfg, err := google.JWTConfigFromJSON(o.CredentialsJSON, fcmScope)
	if err != nil {
		// The error may quote the file; say what, not its contents.
		return nil, errors.New("push: FCM credentials: not a service account key")
	}
	base := o.Client
	if base == nil {
		base = &http.Client{Transport: http.DefaultTransport}
	}
	if o.URL == "" {
		o.URL = FCMURL
	}
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
	ts := oauth2.ReuseTokenSource(nil, cfg.TokenSource(tctx))
	client := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base.Transport}, Timeout: base.Timeout}
	return &FCM{url: o.URL, project: sa.ProjectID, client: client}, nil
}

// Name implements Provider.
func (f *FCM) Name() string { return "fcm" }

// fcmMessage is the body of messages:send.
type fcmMessage struct {
	Message struct {
		Token        string            `json:"token"`
		Notification *fcmNotification  `json:"notification,omitempty"`
		Data         map[string]string `json:"data,omitempty"`
		Android      fcmAndroid        `json:"android"`
	} `json:"message"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type fcmAndroid struct {
	Priority    string `json:"priority"`
	CollapseKey string `json:"collapse_key,omitempty"`
	TTL         string `json:"ttl"`
}

// Send implements Provider: POST /v1/projects/<project>/messages:send.
// Low priority is a data-only message with normal priority.
func (f *FCM) Send(ctx context.Context, d store.Device, n Notification) error {
	var m fcmMessage
	m.Message.Token = d.Token
	m.Message.Data = n.Data
	if !n.Priority.Quiet() {
		m.Message.Notification = &fcmNotification{Title: n.Title, Body: n.Body}
	}
	m.Message.Android.Priority = "normal"
	if n.Priority == High {
		m.Message.Android.Priority = "high"
	}
	m.Message.Android.CollapseKey = n.CollapseID
	ttl := max(int64(time.Until(n.Expires).Seconds()), 0)
	m.Message.Android.TTL = strconv.FormatInt(ttl, 10) + "s"
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("push: encode FCM message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+"/v1/projects/"+f.project+"/messages:send", bytes.NewReader(body))
	if err != nil {
		return &SendError{Reason: "bad request URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := f.client.Do(req)
	if err != nil {
		return unreachable(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 16<<10))
	if res.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	se := &SendError{Status: res.StatusCode, Reason: e.Error.Status, RetryAfter: retryAfter(res.Header.Get("Retry-After"))}
	for _, dt := range e.Error.Details {
		if dt.ErrorCode != "" {
			se.Reason = dt.ErrorCode
		}
	}
	switch {
	case se.Reason == "UNREGISTERED" || res.StatusCode == http.StatusNotFound:
		se.Dead = true
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		se.Retry = true
	}
	return se
}
