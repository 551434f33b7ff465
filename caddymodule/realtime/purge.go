package realtime

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/caddymodule/internal/tagpurge"
)

// cachePurges applies to the config's edge caches the purges the origin's
// answers to realtime's calls name: the Spark-Purge field of a single
// call, the purge list of each stored message of a batch call. These
// answers never pass spark_cache, which would otherwise have applied
// them. A nil purger (no spark_cache in the binary; none in the config
// makes an app with no stores) purges nothing.
//
// Purges run before the caller answers its client (the sent frame): a
// client that got "sent" and then reads its message list or inbox
// through the edge must see the message, as it would after a REST send
// whose Spark-Purge spark_cache applied before passing the response on.
type cachePurges struct {
	purger  tagpurge.Purger
	timeout time.Duration // bounds a purge (its Redis part)
	logger  *zap.Logger
}

// apply purges tags; it is detached from any client's context, as the
// change the tags describe is stored whether or not the client waits.
func (p *cachePurges) apply(tags []string) {
	if p.purger == nil || len(tags) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if err := p.purger.PurgeTags(ctx, tags...); err != nil {
		p.logger.Warn("the origin named a purge the caches refuse", zap.Strings("tags", tags), zap.Error(err))
	}
}

// appendNew appends to dst the tags it does not hold yet.
func appendNew(dst []string, tags []string) []string {
	for _, t := range tags {
		if !slices.Contains(dst, t) {
			dst = append(dst, t)
		}
	}
	return dst
}
