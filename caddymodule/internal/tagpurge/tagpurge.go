// Package tagpurge is how one Spark plugin purges the edge caches of its
// config by tag without importing spark_cache: spark_cache provides the
// Caddy app AppID, which implements Purger over every spark_cache store
// of the config, and another plugin (spark_realtime) finds it with Load.
package tagpurge

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// AppID is the ID of spark_cache's Caddy app, the config's Purger.
const AppID = "spark_cache"

// Purger removes cached entries by tag, exactly as an origin response's
// Spark-Purge field seen by spark_cache does (L1, hot copies, L2 and the
// purge bus to other edges).
type Purger interface {
	// PurgeTags removes every entry tagged with one of tags. A tag that is
	// empty or holds a space, comma or NUL is refused, and nothing is
	// purged.
	PurgeTags(ctx context.Context, tags ...string) error
}

// Load returns the config's Purger, or nil when spark_cache is not in the
// binary (then no cache of the config can hold anything to purge). Call
// it from Provision: ctx.App provisions the app (empty) if no module has
// yet, so caches provisioned after the caller are still reached.
func Load(ctx caddy.Context) (Purger, error) {
	if _, err := caddy.GetModule(AppID); err != nil {
		return nil, nil // no spark_cache registered
	}
	app, err := ctx.App(AppID)
	if err != nil {
		return nil, fmt.Errorf("load the %s app: %w", AppID, err)
	}
	p, ok := app.(Purger)
	if !ok {
		return nil, fmt.Errorf("the %s app (%T) does not purge by tag", AppID, app)
	}
	return p, nil
}

// CheckTags returns an error naming the first tag a purge cannot carry:
// empty, or holding a space, comma or NUL (the separators of Cache-Tags
// and Spark-Purge).
func CheckTags(tags []string) error {
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, " ,\x00") {
			return fmt.Errorf("invalid tag %q", t)
		}
	}
	return nil
}
