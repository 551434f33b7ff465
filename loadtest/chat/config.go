// Package chat is the load test's chat scenario: users in matched pairs on
// spark.v1 WebSockets spread over several edges, sending messages, typing
// indicators and the app's REST calls at set rates, with a share of the
// connections dropped mid-run and resumed on another edge. A ledger counts
// lost, duplicated and misdelivered messages exactly; send → receive latency
// is measured at the receiver with HdrHistogram.
package chat

import (
	"errors"
	"fmt"
	"time"

	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// Pairing says how the users' pairs get their conversation.
type Pairing string

const (
	// PairingAPI matches each pair through the origin's API (mutual likes,
	// POST /api/swipes; an existing match is found with GET /api/matches).
	PairingAPI Pairing = "api"
	// PairingFixed assumes conversation k+1 joins the k-th pair (users
	// FirstUser+2k and FirstUser+2k+1): the reference hub's convention.
	PairingFixed Pairing = "fixed"
)

// Config is one chat run.
type Config struct {
	// Edges are the edges' base URLs (loopback only); user i connects to
	// Edges[i % len(Edges)] and resumes on the next one.
	Edges []string
	// Users is the number of WebSocket users, even: pairs FirstUser+2k and
	// FirstUser+2k+1 (with PairingAPI a pair that cannot be matched is
	// replaced by the next ids).
	Users int
	// FirstUser is the first user id (default 1).
	FirstUser int64
	// JWTSecret signs the users' tokens (default the development secret).
	JWTSecret string
	// Pairing is how pairs get their conversation (default PairingAPI).
	Pairing Pairing
	// Duration is the traffic phase; the drain follows.
	Duration time.Duration
	// MessageRate, TypingRate and RESTRate are per second, over all users.
	MessageRate, TypingRate, RESTRate float64
	// DropShare of the connections are dropped (no close frame) between a
	// quarter and three quarters of Duration and resumed on the next edge
	// with since=<last processed seq>.
	DropShare float64
	// Drain bounds the wait, after Duration, for every message to arrive
	// (default 15 s).
	Drain time.Duration
	// Timeout bounds each dial and REST call (default 10 s).
	Timeout time.Duration
	// DialParallel is how many connections are opened at once (default 64).
	DialParallel int
	// RunID prefixes every client_msg_id (default: the start time).
	RunID string
	// OnReady, when set, is called once every connection is open, before
	// the traffic starts.
	OnReady func(connected int)
	// Progress, when set, is called about once a second.
	Progress func(Progress)
	// Discard is fault injection for tests: a frame it returns true for is
	// thrown away by the client as if never received (not processed, not
	// acked by itself).
	Discard func(user int64, f *sparkv1.Frame) bool
}

// Progress is the live state of a run.
type Progress struct {
	Elapsed                      time.Duration
	Connected                    int64
	Sent, Received, Typing, REST int64
	Outstanding                  int
	Draining                     bool
}

// String formats the progress line.
func (p Progress) String() string {
	phase := "run"
	if p.Draining {
		phase = "drain"
	}
	return fmt.Sprintf("%s %4.0fs  conns %d  msgs sent %d recv %d (outstanding %d)  typing %d  rest %d",
		phase, p.Elapsed.Seconds(), p.Connected, p.Sent, p.Received, p.Outstanding, p.Typing, p.REST)
}

// withDefaults checks c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.Edges) == 0 {
		return c, errors.New("chat: at least one edge is required")
	}
	for _, e := range c.Edges {
		if _, err := loadtest.CheckTarget(e); err != nil {
			return c, fmt.Errorf("chat: edge %q: %w", e, err)
		}
	}
	if c.Users < 2 || c.Users%2 != 0 {
		return c, fmt.Errorf("chat: users must be even and at least 2, got %d", c.Users)
	}
	if c.FirstUser == 0 {
		c.FirstUser = 1
	}
	if c.FirstUser < 0 {
		return c, fmt.Errorf("chat: first user must be positive, got %d", c.FirstUser)
	}
	if c.JWTSecret == "" {
		c.JWTSecret = loadtest.DevJWTSecret
	}
	switch c.Pairing {
	case "":
		c.Pairing = PairingAPI
	case PairingAPI, PairingFixed:
	default:
		return c, fmt.Errorf("chat: pairing %q: want api or fixed", c.Pairing)
	}
	if c.Duration <= 0 {
		return c, fmt.Errorf("chat: duration must be positive, got %s", c.Duration)
	}
	if c.MessageRate < 0 || c.TypingRate < 0 || c.RESTRate < 0 {
		return c, errors.New("chat: rates must not be negative")
	}
	if c.DropShare < 0 || c.DropShare > 1 {
		return c, fmt.Errorf("chat: drop share must be within 0..1, got %g", c.DropShare)
	}
	if c.Drain <= 0 {
		c.Drain = 15 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.DialParallel <= 0 {
		c.DialParallel = 64
	}
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("lt%x", time.Now().UnixNano())
	}
	return c, nil
}
