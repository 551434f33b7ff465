// Package push sends the origin's push notifications: a Notifier takes the
// origin's events (message stored, match made, like received) without ever
// blocking the request that caused them, batches them per user, decides
// each notification's priority from its kind and the user's presence,
// writes it in the device's language and hands it to a Provider: APNs
// (HTTP/2, token auth), FCM (HTTP v1, service account) or a log.
package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spark-edge/spark/origin/store"
)

// Kind is what an event reports to its recipient.
type Kind string

// Kinds of events the notifier takes.
const (
	// KindMessage: a message arrived in one of the user's conversations.
	KindMessage Kind = "message"
	// KindMatch: the user has a new match.
	KindMatch Kind = "match"
	// KindLike: someone liked the user (before any match).
	KindLike Kind = "like"
)

// Event is one thing a user may be notified of.
type Event struct {
	// Kind says what happened.
	Kind Kind
	// UserID is the recipient.
	UserID int64
	// FromID is the other user (the sender, the match, who liked).
	FromID int64
	// ConversationID is the message's or the match's conversation.
	ConversationID int64
	// MessageID is the message (KindMessage): it is not notified when the
	// recipient's read mark reached it by the time the batch goes out.
	MessageID int64
	// Body is the message text (shown only on devices with previews on).
	Body string
}

// Priority is how urgently a notification must reach the phone.
type Priority int

// Priorities, lowest first.
const (
	// Low: quiet (data only, no alert), delivered when convenient: a like,
	// or a message while the user is connected to the app.
	Low Priority = iota + 1
	// Medium: an alert delivered in a power-friendly way: a message while
	// the user is not connected.
	Medium
	// High: an alert delivered at once: a new match.
	High
)

// String is the metric label: "low", "medium" or "high".
func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// Quiet reports whether notifications of p carry no alert.
func (p Priority) Quiet() bool { return p == Low }

// TTL is how long a notification of p is worth delivering.
func (p Priority) TTL() time.Duration {
	switch p {
	case High:
		return 24 * time.Hour
	case Medium:
		return time.Hour
	}
	return 15 * time.Minute
}

// Notification is what a Provider sends to one device.
type Notification struct {
	// UserID is the recipient.
	UserID int64
	// Kind is the kind of the events it reports.
	Kind Kind
	// Priority decides the provider's delivery options.
	Priority Priority
	// Title and Body are the alert's text; empty when quiet.
	Title, Body string
	// CollapseID groups notifications that replace one another on the
	// phone (one per conversation, one for matches, one for likes).
	CollapseID string
	// Count is how many events it reports.
	Count int
	// Data is the app's payload: kind, count, conversation_id…
	Data map[string]string
	// Expires is when the provider should stop trying to deliver it.
	Expires time.Time
	// Created is when the oldest event it reports was enqueued.
	Created time.Time
}

// Provider sends notifications to one push service.
type Provider interface {
	// Name is the metric label: "apns", "fcm", "log".
	Name() string
	// Send delivers n to device d. Errors that are a *SendError say
	// whether to retry and whether the token is dead.
	Send(ctx context.Context, d store.Device, n Notification) error
}

// SendError is a push service's refusal.
type SendError struct {
	// Status is the HTTP status (0: no answer).
	Status int
	// Reason is the service's reason ("Unregistered", "UNREGISTERED",
	// "QUOTA_EXCEEDED"…); never a token.
	Reason string
	// Dead: the token will never work again; remove it.
	Dead bool
	// Retry: the same request may succeed later (429, 5xx, no answer).
	Retry bool
	// RetryAfter is the service's Retry-After (0: none).
	RetryAfter time.Duration
}

// Error implements error.
func (e *SendError) Error() string {
	return fmt.Sprintf("push: status %d %s", e.Status, e.Reason)
}

// asSendError returns err as a *SendError; an error that is not one (no
// answer, a timeout) is retryable.
func asSendError(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Reason: "unreachable", Retry: true}
}

// Directory is what the notifier reads from the store (store.Store has it).
type Directory interface {
	// DevicesOf returns the devices of each user that has any (one read
	// per round of batches).
	DevicesOf(ctx context.Context, users []int64) (map[int64][]store.Device, error)
	// RemoveDeadDevice deletes a token the provider reported dead.
	RemoveDeadDevice(ctx context.Context, platform store.Platform, token string) error
	// ReadMark is the last message the user read in a conversation.
	ReadMark(ctx context.Context, user, convID int64) (int64, error)
	// GetProfile names the other user.
	GetProfile(ctx context.Context, id int64) (store.Profile, error)
	// Blocked reports whether two users are in a block relation: what one
	// did before the other blocked them is not notified any more.
	Blocked(ctx context.Context, a, b int64) (bool, error)
}

// Presence tells whether a user is connected to the app now
// (eventbus.Presence).
type Presence interface {
	// Online reports whether user holds a realtime connection.
	Online(ctx context.Context, user int64) (bool, error)
}
