// Package store defines the persistence interface of the Spark origin and the
// types it traffics in. Two implementations exist: store/postgis (PostgreSQL +
// PostGIS, for real) and store/memory (embedded, the development default).
// Both are held to the conformance suite in store/storetest.
package store

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Errors every implementation returns (wrapped) so the API can map them to
// HTTP statuses with errors.Is.
var (
	// ErrNotFound: the resource does not exist or the caller may not see it.
	ErrNotFound = errors.New("not found")
	// ErrPreconditionFailed: a conditional update lost against a newer version.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrConflict: the request contradicts existing state (e.g. a swipe in the
	// other direction already recorded).
	ErrConflict = errors.New("conflict")
	// ErrNoLocation: the user has not set a location yet.
	ErrNoLocation = errors.New("location not set")
	// ErrInvalid: the store rejected an argument (self swipe, bad range...).
	ErrInvalid = errors.New("invalid argument")
	// ErrGone: the events asked for are no longer kept (or were never
	// written): the client must resynchronise over the REST API.
	ErrGone = errors.New("gone")
)

// CellPrecision is the geohash precision stored with each user's location
// (cells of about 1.2 x 0.6 km): a location update invalidates cached
// candidates at this granularity, and the PostGIS cell cache loads any
// coarser cell by prefix.
const CellPrecision = 6

// Direction of a swipe.
type Direction string

// Swipe directions.
const (
	Like      Direction = "like"
	Pass      Direction = "pass"
	Superlike Direction = "superlike"
)

// Valid reports whether d is a known direction.
func (d Direction) Valid() bool { return d == Like || d == Pass || d == Superlike }

// Positive reports whether d counts towards a match.
func (d Direction) Positive() bool { return d == Like || d == Superlike }

// genders a profile may state.
var genders = [...]string{"woman", "man", "nonbinary"}

// AllGenders returns the genders a profile may state (a fresh slice).
func AllGenders() []string { return append([]string(nil), genders[:]...) }

// ValidGender reports whether g is one of AllGenders.
func ValidGender(g string) bool { return slices.Contains(genders[:], g) }

// Profile is the public part of a user.
type Profile struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Age    int16    `json:"age"`
	Gender string   `json:"gender"`
	Bio    string   `json:"bio"`
	Photos []string `json:"photos"`
	// Uploads are the names of the photos the user uploaded to the origin
	// (AddPhoto), oldest first; UpdateProfile leaves them alone.
	Uploads []string `json:"uploads"`
	Active  bool     `json:"active"`
	Version int64    `json:"-"`
}

// ProfileUpdate is the replaceable part of a profile.
type ProfileUpdate struct {
	Name   string
	Age    int16
	Gender string
	Bio    string
	Photos []string
	Active bool
}

// NewUser is what CreateUser needs; Location is optional.
type NewUser struct {
	Profile     ProfileUpdate
	Preferences *Preferences
	Location    *Point
}

// Point is a WGS84 position in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Preferences drive suggestions.
type Preferences struct {
	MinAge        int16    `json:"min_age"`
	MaxAge        int16    `json:"max_age"`
	MaxDistanceKm int32    `json:"max_distance_km"`
	Genders       []string `json:"genders"`
}

// DefaultPreferences apply until a user stores their own.
func DefaultPreferences() Preferences {
	return Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 50, Genders: AllGenders()}
}

// LocationChange describes a stored location update.
type LocationChange struct {
	OldCell string // "" when the user had no location
	NewCell string
	// Stored is the point now stored for the user: the centre of a cell of
	// the coarse grid (geocache.GridCellOf), never the reported point.
	Stored Point
	// Kept is true when the report fell within the user's current cell
	// widened by the hysteresis margin: nothing changed.
	Kept bool
}

// Candidate is one suggestion, nearest first.
type Candidate struct {
	Profile
	// DistanceM is the distance between the two users' stored points (cell
	// centres of the coarse grid); suggestions are ordered by it, then by
	// id.
	DistanceM float64
}

// SwipeResult is the outcome of a swipe.
type SwipeResult struct {
	Direction Direction
	Created   bool   // false when the same swipe was already recorded
	Match     *Match // non-nil when this swipe (or the earlier identical one) made a match
	// Events are the events this swipe appended: the match events when it
	// made the match, else none.
	Events []Event
}

// Match between two users, with its conversation.
type Match struct {
	ID             int64     `json:"id"`
	UserA          int64     `json:"-"`
	UserB          int64     `json:"-"`
	PeerID         int64     `json:"peer_id"`
	ConversationID int64     `json:"conversation_id"`
	CreatedAt      time.Time `json:"created_at"`
}

// Peer returns the other participant from me's point of view.
func (m Match) Peer(me int64) int64 {
	if m.UserA == me {
		return m.UserB
	}
	return m.UserA
}

// Message in a conversation.
type Message struct {
	ID             int64 `json:"id"`
	ConversationID int64 `json:"conversation_id"`
	// ConvSeq numbers the conversation's messages 1, 2, 3 … in commit order.
	ConvSeq     int64     `json:"conv_seq"`
	SenderID    int64     `json:"sender_id"`
	Body        string    `json:"body"`
	ClientMsgID string    `json:"client_msg_id"`
	CreatedAt   time.Time `json:"created_at"`
}

// ConversationSummary is one row of a user's inbox.
type ConversationSummary struct {
	ID          int64     `json:"id"`
	MatchID     int64     `json:"match_id"`
	PeerID      int64     `json:"peer_id"`
	LastMessage *Message  `json:"last_message"`
	UnreadCount int64     `json:"unread_count"`
	CreatedAt   time.Time `json:"created_at"`
}

// Store is the origin's persistence. Methods taking a user id act on behalf of
// that user and enforce participation: another user's private resources are
// ErrNotFound.
//
// Writes that concern a user's realtime feed (a message, the swipe that makes
// a match, a read mark that moves, an unmatch, a block that ends a match)
// append events to the log of every user concerned in the same transaction,
// each with the user's next sequence number, and return them so the caller
// can publish them once committed. A write that fails appends nothing.
// Concurrent writes take the users' log heads in ascending user id, so they
// never deadlock one another.
type Store interface {
	// CreateUser inserts a user and returns its id.
	CreateUser(ctx context.Context, u NewUser) (int64, error)
	// GetProfile returns the public profile of a user.
	GetProfile(ctx context.Context, id int64) (Profile, error)
	// UpdateProfile replaces a profile; with ifVersion > 0 it only applies when
	// the stored version still equals ifVersion (else ErrPreconditionFailed).
	UpdateProfile(ctx context.Context, id int64, p ProfileUpdate, ifVersion int64) (Profile, error)
	// GetPreferences returns the stored or default preferences.
	GetPreferences(ctx context.Context, id int64) (Preferences, error)
	// PutPreferences stores preferences.
	PutPreferences(ctx context.Context, id int64, p Preferences) error
	// SetLocation stores the user's location coarsely: the centre of pt's
	// cell of the coarse grid (about 1 km × 1 km, geocache.GridCellOf) and
	// its geohash cell. Nothing finer is ever stored, so suggestions, their
	// order, their radius and their distances only see cell centres. When
	// pt lies within the user's current cell widened by a margin drawn for
	// this update from [0, geocache.MaxHysteresisM] metres, the current
	// point is kept (geocache.NextGridPoint). CreateUser snaps likewise.
	SetLocation(ctx context.Context, id int64, pt Point) (LocationChange, error)
	// Suggestions returns up to limit active users within the user's max
	// distance, in age range and gender preference, not self, not swiped, not
	// blocked either way, nearest first.
	Suggestions(ctx context.Context, id int64, limit int) ([]Candidate, error)
	// Swipe records a swipe; a mutual positive swipe creates a match and its
	// conversation atomically. Repeating a swipe is a no-op (Created false).
	Swipe(ctx context.Context, id, target int64, d Direction) (SwipeResult, error)
	// Block hides two users from each other's suggestions and ends any
	// match; the unmatch events are returned when it ended one.
	Block(ctx context.Context, id, target int64) ([]Event, error)
	// BlockedWith returns, ascending and at most max of them, the ids of the
	// users in a block relation with the user, either direction: those
	// the user blocked and those who blocked the user. They may not see
	// the user's profile. Always read from the primary: a block must hold
	// at once.
	BlockedWith(ctx context.Context, id int64, max int) ([]int64, error)
	// Blocked reports whether a and b are in a block relation, either
	// direction (on the primary, as BlockedWith).
	Blocked(ctx context.Context, a, b int64) (bool, error)
	// ListMatches returns the user's current matches, newest first.
	ListMatches(ctx context.Context, id int64) ([]Match, error)
	// Unmatch ends a match the user is part of; returns the ended match
	// and its unmatch events.
	Unmatch(ctx context.Context, id, matchID int64) (Match, []Event, error)
	// ListConversations returns the user's open conversations with their last
	// message and unread count, most recently active first.
	ListConversations(ctx context.Context, id int64) ([]ConversationSummary, error)
	// ListMessages returns up to limit messages older than message id before
	// (0: newest), newest first.
	ListMessages(ctx context.Context, id, convID, before int64, limit int) ([]Message, error)
	// SendMessages stores a batch of messages in one transaction and
	// returns one result per draft, in order. Each is idempotent per
	// (conversation, sender, ClientMsgID): a retry (also within the batch)
	// returns the stored message with Created false and no events. A draft
	// that may not be stored (not a participant, the match ended) fails
	// alone with its Err; the others are stored. Per conversation, messages
	// get ConvSeq in the order of the drafts.
	SendMessages(ctx context.Context, drafts []MessageDraft) []SendResult
	// MarkRead marks the conversation read by the user up to messageID;
	// when the mark moved forward, it returns the read events.
	MarkRead(ctx context.Context, id, convID, messageID int64) ([]Event, error)
	// Events returns the user's events with seq > since, ascending, at most
	// limit of them (a limit below 1 is 1), and the user's newest seq, read
	// on the primary.
	// A *GoneError (ErrGone) when events after since are no longer kept
	// (since is older than the retention) or since is beyond the user's
	// newest seq.
	Events(ctx context.Context, id, since int64, limit int) (EventPage, error)
	// PruneEvents deletes the events r does not keep, oldest first per
	// user, and returns how many went. It is meant for a background loop,
	// never a request's path.
	PruneEvents(ctx context.Context, r Retention) (int64, error)
	// AddPhoto appends the name of an uploaded photo to the user's Uploads
	// and bumps the profile version, atomically: ErrConflict when the user
	// already has max uploads or this name, ErrNotFound when there is no
	// such user.
	AddPhoto(ctx context.Context, id int64, name string, max int) (Profile, error)
	// RemovePhoto removes the name from the user's Uploads and bumps the
	// profile version: ErrNotFound when the user has no such photo.
	RemovePhoto(ctx context.Context, id int64, name string) (Profile, error)
	// DeviceStore keeps push devices and read marks for the notifier.
	DeviceStore
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close()
}
