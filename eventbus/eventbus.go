// Package eventbus carries Spark's realtime events from the origin to the
// edges that hold the users' WebSocket connections, and ephemeral events
// (typing) between edges. It is a library: no Caddy, no origin.
//
// The origin is the source of truth: every durable event is stored in the
// user's event log, with a gapless per-user sequence number, before it is
// published here. The bus is the fast path, not the record: a subscriber
// that misses messages (a dropped connection, a Redis restart) learns it
// from a gap in the sequence or from Reconnected, and catches up from the
// origin's log. Two implementations satisfy the same contract (the
// conformance suite in eventbus/bustest): Redis pub/sub (sharded pub/sub in a
// Cluster), and the origin's own stream (StreamServer at the origin,
// StreamClient at the edge) for deployments without Redis.
package eventbus

import (
	"context"
)

// Message is one event for one user.
type Message struct {
	// UserID is the user the event is for.
	UserID int64
	// Seq is the event's position in the user's log (1, 2, 3 …), or 0 for
	// an ephemeral event (typing), which is never stored and may be lost.
	Seq int64
	// Payload is the event as JSON: a durable event's
	// {"seq","kind","at","data"} object, or an ephemeral frame. The bus
	// passes it through unchanged; at most MaxPayload bytes.
	Payload []byte
}

// MaxPayload bounds a message's payload on every transport.
const MaxPayload = 256 << 10

// Publisher sends messages to whoever subscribes to their users.
type Publisher interface {
	// Publish sends msgs, in order per user. An error means some may not
	// have been sent; durable ones are recovered from the origin's log.
	Publish(ctx context.Context, msgs ...Message) error
}

// Handler receives the messages of subscribed users. The subscriber calls it
// from its own goroutine(s), in publish order per user; it must not block
// for long (queue and return), and must not call Subscribe or Unsubscribe
// (they wait for an answer that goroutine reads). The payload is the
// handler's to keep.
type Handler func(Message)

// Subscriber receives the messages of the users a node asked for.
type Subscriber interface {
	// Subscribe starts delivering the users' messages to the subscriber's
	// Handler, and returns once that holds: every message published after
	// it returns is delivered (so an edge subscribes first and reads the
	// origin's log second, and nothing falls between). Callers
	// reference-count: one Subscribe per user per node, matched by one
	// Unsubscribe. A subscribed user counts as online (Presence) until
	// unsubscribed, or until the node stops refreshing the mark (it dies):
	// an edge subscribes exactly the users it holds connections for.
	//
	// On an error the users stay wanted: when the bus is unreachable they
	// are subscribed as soon as it is back, and Reconnected follows.
	// Unsubscribe them as usual.
	Subscribe(ctx context.Context, users ...int64) error
	// Unsubscribe stops delivering the users' messages: once it returns,
	// none arrives any more.
	Unsubscribe(ctx context.Context, users ...int64) error
	// Reconnected receives a value (sent without blocking) each time the
	// subscription was re-established after a loss: messages may have been
	// missed meanwhile, so every subscribed user must catch up from the
	// origin's log.
	Reconnected() <-chan struct{}
	// Close ends the subscription and releases its connections.
	Close() error
}

// Presence tells whether a user holds a realtime connection at any edge now.
type Presence interface {
	// Online reports whether user is connected to some edge.
	Online(ctx context.Context, user int64) (bool, error)
}
