package realtime

import (
	"fmt"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/spark-edge/spark/eventbus"
)

// Open connects to the origin's event stream. An unreachable origin is not
// an error: the client keeps trying in the background and signals
// Reconnected once it is in.
func (o *OriginEvents) Open(h eventbus.Handler, log *zap.Logger) (Bus, error) {
	c, err := eventbus.NewStreamClient(eventbus.StreamClientOptions{URL: o.URL, Token: o.token, Logger: slogFrom(log)}, h)
	if err != nil {
		return nil, fmt.Errorf("events origin %s: %w", o.URL, err)
	}
	return c, nil
}

// Open connects to Redis. An unreachable Redis is not an error: the
// subscriber keeps trying in the background and signals Reconnected once
// it is in.
func (r *RedisEvents) Open(h eventbus.Handler, log *zap.Logger) (Bus, error) {
	o := eventbus.DefaultRedisOptions(r.Addresses...)
	o.Cluster, o.MasterName, o.Username, o.Password, o.DB, o.PoolSize = r.Cluster, r.MasterName, r.username, r.password, r.DB, r.PoolSize
	if r.KeyPrefix != "" {
		o.KeyPrefix = r.KeyPrefix
	}
	r.Timeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
	o.Logger = slogFrom(log)
	s, err := eventbus.NewRedisSubscriber(o, h)
	if err != nil {
		return nil, fmt.Errorf("events redis %v: %w", r.Addresses, err)
	}
	return s, nil
}

// slogFrom adapts the module's zap logger for the bus.
func slogFrom(log *zap.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return slog.New(zapslog.NewHandler(log.Core()))
}
