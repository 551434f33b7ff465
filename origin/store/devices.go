package store

import (
	"context"
	"time"
)

// MaxDevicesPerUser is how many push devices a user keeps. Registering one
// more replaces the one registered (or refreshed) longest ago: a phone that
// was reset or sold never unregisters, and refusing the new one would
// leave the user without notifications on the phone they hold now.
const MaxDevicesPerUser = 5

// Platform is the push service a device token belongs to.
type Platform string

// Platforms.
const (
	// IOS tokens are sent through Apple's APNs.
	IOS Platform = "ios"
	// Android tokens are sent through Firebase Cloud Messaging.
	Android Platform = "android"
)

// Valid reports whether p is a known platform.
func (p Platform) Valid() bool { return p == IOS || p == Android }

// Device is a phone (an app install) registered for push notifications.
type Device struct {
	// UserID owns the device.
	UserID int64 `json:"-"`
	// Platform says which service Token belongs to.
	Platform Platform `json:"platform"`
	// Token is the APNs device token or the FCM registration token. A
	// token is held by one user at a time: registering it again under
	// another user moves it (the phone changed accounts).
	Token string `json:"token"`
	// AppID is the APNs topic (bundle id) or the Android package name.
	AppID string `json:"app_id"`
	// Locale is the BCP 47 tag notification texts are written in ("en",
	// "es-MX").
	Locale string `json:"locale"`
	// Previews: notifications may show message text.
	Previews bool `json:"previews"`
	// UpdatedAt is when the device was registered or last refreshed.
	UpdatedAt time.Time `json:"updated_at"`
}

// DeviceStore keeps push devices and answers what the push notifier asks.
// Every Store implements it.
type DeviceStore interface {
	// PutDevice registers d for user (d.UserID is ignored), keyed by
	// (platform, token): registering the same token again updates its
	// fields and refreshes UpdatedAt (Created false), under whichever user
	// held it. When the user then holds more than MaxDevicesPerUser, the
	// ones with the oldest UpdatedAt are removed. ErrNotFound when there
	// is no such user.
	PutDevice(ctx context.Context, user int64, d Device) (created bool, err error)
	// DeleteDevice unregisters the user's device with this token (any
	// platform); ErrNotFound when the user holds no such token.
	DeleteDevice(ctx context.Context, user int64, token string) error
	// Devices returns the user's devices, most recently updated first.
	Devices(ctx context.Context, user int64) ([]Device, error)
	// DevicesOf returns the devices of many users in one read, each
	// user's most recently updated first; users without a device are
	// absent from the map.
	DevicesOf(ctx context.Context, users []int64) (map[int64][]Device, error)
	// RemoveDeadDevice deletes the token a push service reported dead,
	// whoever holds it; removing an absent token is not an error.
	RemoveDeadDevice(ctx context.Context, platform Platform, token string) error
	// ReadMark returns the id of the last message the user marked read in
	// the conversation (0: none), whether or not the user takes part in it.
	ReadMark(ctx context.Context, user, convID int64) (int64, error)
}
