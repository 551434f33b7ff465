package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Presence in Redis: a user's hash <prefix>presence:<id> holds, for each
// node subscribed to the user, the field <node> with the Unix time in ms
// until which the mark holds. Nodes renew their marks every
// PresenceRefresh for PresenceTTL and delete them on Unsubscribe; the key
// itself expires with its newest mark. A user is online while some mark is
// unexpired, so a node that dies takes its users offline within the TTL.

// usersPerPipeline bounds one pipeline of presence commands.
const usersPerPipeline = 1000

// presenceMarks writes one node's presence marks.
type presenceMarks struct {
	client redis.UniversalClient
	names  naming
	node   string
	ttl    time.Duration
}

// mark sets (or renews) the node's marks on users.
func (p presenceMarks) mark(ctx context.Context, users []int64) error {
	until := strconv.FormatInt(time.Now().Add(p.ttl).UnixMilli(), 10)
	return p.pipelined(ctx, users, func(pl redis.Pipeliner, key string) {
		pl.HSet(ctx, key, p.node, until)
		pl.PExpire(ctx, key, p.ttl)
	})
}

// unmark deletes the node's marks on users.
func (p presenceMarks) unmark(ctx context.Context, users []int64) error {
	return p.pipelined(ctx, users, func(pl redis.Pipeliner, key string) { pl.HDel(ctx, key, p.node) })
}

func (p presenceMarks) pipelined(ctx context.Context, users []int64, add func(redis.Pipeliner, string)) error {
	for len(users) > 0 {
		n := min(len(users), usersPerPipeline)
		_, err := p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, u := range users[:n] {
				add(pl, p.names.presence(u))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("eventbus: redis presence of %d users: %w", n, err)
		}
		users = users[n:]
	}
	return nil
}

// online reports whether some node's mark on user is unexpired.
func online(ctx context.Context, client redis.UniversalClient, names naming, user int64) (bool, error) {
	vals, err := client.HVals(ctx, names.presence(user)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("eventbus: redis presence of user %d: %w", user, err)
	}
	now := time.Now().UnixMilli()
	for _, v := range vals {
		if until, err := strconv.ParseInt(v, 10, 64); err == nil && until > now {
			return true, nil
		}
	}
	return false, nil
}
