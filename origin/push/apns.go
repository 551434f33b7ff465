package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/spark-edge/spark/origin/store"
)

// APNs endpoints.
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// apnsTokenLife is how long one provider token is used: Apple refuses
// tokens older than an hour and new ones more often than every 20 minutes.
const apnsTokenLife = 40 * time.Minute

// APNsOptions configures an APNs provider (token-based authentication).
type APNsOptions struct {
	// URL is the APNs server (APNsProduction, APNsSandbox, a fake).
	URL string
	// KeyID is the 10-character id of the .p8 signing key.
	KeyID string
	// TeamID is the Apple developer team id (the token's issuer).
	TeamID string
	// Key is the .p8 key (LoadAPNsKey).
	Key *ecdsa.PrivateKey
	// Client sends the requests over HTTP/2; nil: a client with its own
	// HTTP/2 transport and the system roots.
	Client *http.Client
}

// LoadAPNsKey reads a .p8 (PKCS #8 PEM) ES256 signing key.
func LoadAPNsKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("push: read APNs key: %w", err)
	}
	return ParseAPNsKey(b)
}

// ParseAPNsKey parses a .p8 (PKCS #8 PEM) ES256 signing key.
func ParseAPNsKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("push: APNs key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("push: APNs key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("push: APNs key: not an ECDSA (ES256) key")
	}
	return ek, nil
}

// APNs sends to Apple's push service.
type APNs struct {
	o      APNsOptions
	client *http.Client

	mu      sync.Mutex
	token   string
	tokenAt time.Time
}

var _ Provider = (*APNs)(nil)

// NewAPNs returns an APNs provider.
func NewAPNs(o APNsOptions) (*APNs, error) {
	if o.Key == nil || o.KeyID == "" || o.TeamID == "" {
		return nil, errors.New("push: APNs needs a key, its key id and the team id")
	}
	if o.URL == "" {
		o.URL = APNsProduction
	}
	c := o.Client
	if c == nil {
		c = &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 5 * time.Minute}}
	}
	return &APNs{o: o, client: c}, nil
}

// Name implements Provider.
func (a *APNs) Name() string { return "apns" }

// bearer returns the provider token, signing a new one when it is
// apnsTokenLife old (or renew is set: APNs said ExpiredProviderToken).
func (a *APNs) bearer(renew bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && !renew && time.Since(a.tokenAt) < apnsTokenLife {
		return a.token, nil
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.o.TeamID, "iat": now.Unix()})
	t.Header["kid"] = a.o.KeyID
	s, err := t.SignedString(a.o.Key)
	if err != nil {
		return "", fmt.Errorf("push: sign APNs token: %w", err)
	}
	a.token, a.tokenAt = s, now
	return s, nil
}

// apnsPayload is the JSON body: aps plus the app's data at the top level.
func apnsPayload(n Notification) ([]byte, error) {
	aps := map[string]any{}
	if n.Priority.Quiet() {
		aps["content-available"] = 1
	} else {
		aps["alert"] = map[string]string{"title": n.Title, "body": n.Body}
		aps["sound"] = "default"
		aps["thread-id"] = n.CollapseID
	}
	body := map[string]any{"aps": aps}
	for k, v := range n.Data {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("push: encode APNs payload: %w", err)
	}
	return b, nil
}

// Send implements Provider: POST /3/device/<token> over HTTP/2.
func (a *APNs) Send(ctx context.Context, d store.Device, n Notification) error {
	body, err := apnsPayload(n)
	if err != nil {
		return err
	}
	renew := false
	for attempt := 0; ; attempt++ {
		tok, err := a.bearer(renew)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.o.URL+"/3/device/"+url.PathEscape(d.Token), bytes.NewReader(body))
		if err != nil {
			return &SendError{Reason: "bad request URL"}
		}
		h := req.Header
		h.Set("authorization", "bearer "+tok)
		h.Set("apns-topic", d.AppID)
		h.Set("content-type", "application/json")
		if n.Priority.Quiet() {
			h.Set("apns-push-type", "background")
			h.Set("apns-priority", "5")
		} else {
			h.Set("apns-push-type", "alert")
			h.Set("apns-priority", "5")
			if n.Priority == High {
				h.Set("apns-priority", "10")
			}
		}
		h.Set("apns-expiration", strconv.FormatInt(n.Expires.Unix(), 10))
		if n.CollapseID != "" {
			h.Set("apns-collapse-id", n.CollapseID)
		}
		res, err := a.client.Do(req)
		if err != nil {
			return unreachable(err)
		}
		se := apnsResult(res)
		if se != nil && se.Reason == "ExpiredProviderToken" && attempt == 0 {
			renew = true
			continue
		}
		if se == nil {
			return nil
		}
		return se
	}
}

// apnsResult reads an APNs answer: nil for 200, else its SendError.
func apnsResult(res *http.Response) *SendError {
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode == http.StatusOK {
		return nil
	}
	var r struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(b, &r)
	se := &SendError{Status: res.StatusCode, Reason: r.Reason, RetryAfter: retryAfter(res.Header.Get("Retry-After"))}
	switch {
	case res.StatusCode == http.StatusGone:
		se.Dead = true
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		se.Retry = true
	case res.StatusCode == http.StatusForbidden && r.Reason == "ExpiredProviderToken":
		se.Retry = true
	}
	return se
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// unreachable is the SendError of a request that got no answer; it keeps
// the cause but not the URL (it holds the device token).
func unreachable(err error) *SendError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &SendError{Reason: "unreachable: " + err.Error(), Retry: true}
}
