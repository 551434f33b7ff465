package origin

import (
	"fmt"
	"net/http"

	"github.com/spark-edge/spark/origin/store"
)

// Device field limits enforced by DecodeDevice.
const (
	// MaxDeviceTokenBytes bounds a push token (FCM tokens are about 160
	// bytes, APNs tokens 64 hex digits; both may grow).
	MaxDeviceTokenBytes = 4096
	// MaxAppIDBytes bounds an APNs topic or Android package name.
	MaxAppIDBytes = 255
	// MaxLocaleBytes bounds a BCP 47 language tag.
	MaxLocaleBytes = 35
)

// DeviceRequest is the body of PUT /api/users/me/devices.
type DeviceRequest struct {
	// Platform is "ios" (APNs) or "android" (FCM).
	Platform string `json:"platform"`
	// Token is the APNs device token (hex) or the FCM registration token.
	Token string `json:"token"`
	// AppID is the APNs topic (bundle id) or the Android package name.
	AppID string `json:"app_id"`
	// Locale is a BCP 47 tag ("en", "es-MX"); empty: "en".
	Locale string `json:"locale"`
	// Previews lets notifications show message text; absent: false.
	Previews *bool `json:"previews"`
}

// DeviceTokenRequest is the body of DELETE /api/users/me/devices.
type DeviceTokenRequest struct {
	// Token is the token to unregister.
	Token string `json:"token"`
}

// DecodeDevice parses and validates the body of PUT /api/users/me/devices.
func DecodeDevice(data []byte) (store.Device, error) {
	var req DeviceRequest
	if err := decodeJSON(data, &req); err != nil {
		return store.Device{}, err
	}
	p := store.Platform(req.Platform)
	if !p.Valid() {
		return store.Device{}, badRequest("platform must be %q or %q", store.IOS, store.Android)
	}
	if err := checkToken(p, req.Token); err != nil {
		return store.Device{}, err
	}
	if req.AppID == "" || len(req.AppID) > MaxAppIDBytes || !allBytes(req.AppID, isAppIDByte) || req.AppID[0] == '.' {
		return store.Device{}, badRequest("app_id is required: a bundle id or package name (letters, digits, '.', '_', '-'), at most %d bytes", MaxAppIDBytes)
	}
	locale := req.Locale
	if locale == "" {
		locale = "en"
	}
	if len(locale) < 2 || len(locale) > MaxLocaleBytes || !allBytes(locale, isLocaleByte) || locale[0] == '-' {
		return store.Device{}, badRequest("locale must be a BCP 47 language tag such as \"en\" or \"es-MX\"")
	}
	d := store.Device{Platform: p, Token: req.Token, AppID: req.AppID, Locale: locale}
	if req.Previews != nil {
		d.Previews = *req.Previews
	}
	return d, nil
}

// DecodeDeviceToken parses the body of DELETE /api/users/me/devices.
func DecodeDeviceToken(data []byte) (string, error) {
	var req DeviceTokenRequest
	if err := decodeJSON(data, &req); err != nil {
		return "", err
	}
	if req.Token == "" || len(req.Token) > MaxDeviceTokenBytes || !allBytes(req.Token, isFCMTokenByte) {
		return "", badRequest("token is required: the push token registered with PUT, at most %d bytes", MaxDeviceTokenBytes)
	}
	return req.Token, nil
}

// checkToken validates a token of platform p: APNs tokens are hex digits
// (an even number, at least 32), FCM tokens letters, digits and -_:.
func checkToken(p store.Platform, token string) error {
	if token == "" || len(token) > MaxDeviceTokenBytes {
		return badRequest("token is required, at most %d bytes", MaxDeviceTokenBytes)
	}
	if p == store.IOS {
		if len(token) < 32 || len(token)%2 != 0 || !allBytes(token, isHexByte) {
			return badRequest("an ios token is the APNs device token in hex (64 hex digits today)")
		}
		return nil
	}
	if !allBytes(token, isFCMTokenByte) {
		return badRequest("an android token is the FCM registration token: letters, digits, '-', '_' and ':'")
	}
	return nil
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
func isFCMTokenByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == ':' }
func isAppIDByte(c byte) bool    { return isAlnum(c) || c == '.' || c == '-' || c == '_' }
func isLocaleByte(c byte) bool   { return isAlnum(c) || c == '-' }

// deviceJSON is a registered device as PUT answers it.
type deviceJSON struct {
	Platform store.Platform `json:"platform"`
	AppID    string         `json:"app_id"`
	Locale   string         `json:"locale"`
	Previews bool           `json:"previews"`
}

// putDevice serves PUT /api/users/me/devices: registers (or refreshes) a
// push token; 201 when new, 200 when it was already registered.
func (s *Server) putDevice(w http.ResponseWriter, r *http.Request, me int64) error {
	d, err := decodeRequest(w, r, DecodeDevice)
	if err != nil {
		return err
	}
	created, err := s.store.PutDevice(r.Context(), me, d)
	if err != nil {
		return fmt.Errorf("register %s device of %d: %w", d.Platform, me, err)
	}
	privateNoStore(w)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, deviceJSON{Platform: d.Platform, AppID: d.AppID, Locale: d.Locale, Previews: d.Previews})
}

// deleteDevice serves DELETE /api/users/me/devices with {"token": …}: 204,
// or 404 when the caller holds no such token.
func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, me int64) error {
	token, err := decodeRequest(w, r, DecodeDeviceToken)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDevice(r.Context(), me, token); err != nil {
		return fmt.Errorf("unregister device of %d: %w", me, err)
	}
	privateNoStore(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
