package eventbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// The Redis wire format. A user's messages go on the channel
// <prefix>u:<id>; the channel names the user, so a message carries only
// an envelope: one version byte, the sequence number as an unsigned
// varint (0 for an ephemeral message), then the payload's bytes as given.
// A 150-byte event costs 2–4 bytes of framing and no encoding work.
const envelopeV1 = 1

// errBadEnvelope is what a message on a user channel that is not an
// envelope decodes to.
var errBadEnvelope = errors.New("eventbus: not a message envelope")

// appendEnvelope appends m's envelope to b.
func appendEnvelope(b []byte, m Message) []byte {
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(m.Seq))
	return append(b, m.Payload...)
}

// decodeEnvelope splits an envelope into its sequence number and payload;
// the payload is a slice of b.
func decodeEnvelope(b []byte) (seq int64, payload []byte, err error) {
	if len(b) == 0 || b[0] != envelopeV1 {
		return 0, nil, errBadEnvelope
	}
	s, n := binary.Uvarint(b[1:])
	if n <= 0 || s > 1<<63-1 {
		return 0, nil, errBadEnvelope
	}
	return int64(s), b[1+n:], nil
}

// naming spells the Redis keys and channels under one prefix.
type naming struct {
	// userChannel is the prefix of every user channel: <prefix>u:.
	userChannel string
	// presenceKey is the prefix of every presence hash: <prefix>presence:.
	presenceKey string
}

func newNaming(prefix string) naming {
	return naming{userChannel: prefix + "u:", presenceKey: prefix + "presence:"}
}

// channel is user's channel name.
func (n naming) channel(user int64) string {
	return n.userChannel + strconv.FormatInt(user, 10)
}

// presence is the key of user's presence hash.
func (n naming) presence(user int64) string {
	return n.presenceKey + strconv.FormatInt(user, 10)
}

// userOf returns the user a channel name belongs to, without allocating;
// false when ch is not one of this prefix's user channels.
func (n naming) userOf(ch []byte) (int64, bool) {
	if len(ch) <= len(n.userChannel) || string(ch[:len(n.userChannel)]) != n.userChannel {
		return 0, false
	}
	return parseUserID(ch[len(n.userChannel):])
}

// parseUserID parses a positive decimal user id without allocating.
func parseUserID(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 || b[0] == '0' {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// checkUsers rejects user ids the bus cannot carry: a user id is positive.
func checkUsers(users []int64) error {
	for _, u := range users {
		if u <= 0 {
			return fmt.Errorf("eventbus: user id %d is not positive", u)
		}
	}
	return nil
}

// checkMessage rejects a message the bus cannot carry.
func checkMessage(m *Message) error {
	if m.UserID <= 0 {
		return fmt.Errorf("eventbus: message for user %d: user id is not positive", m.UserID)
	}
	if m.Seq < 0 {
		return fmt.Errorf("eventbus: message for user %d: negative seq %d", m.UserID, m.Seq)
	}
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("eventbus: message for user %d: payload of %d bytes over the bus's %d", m.UserID, len(m.Payload), MaxPayload)
	}
	return nil
}
