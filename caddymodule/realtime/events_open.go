package realtime

import (
	"errors"

	"go.uber.org/zap"

	"github.com/spark-edge/spark/eventbus"
)

// errBusNotBuilt: the eventbus implementations are not on this branch yet.
var errBusNotBuilt = errors.New("the eventbus implementations are not built into this binary yet")

// Open connects to the origin's event stream.
func (o *OriginEvents) Open(eventbus.Handler, *zap.Logger) (Bus, error) { return nil, errBusNotBuilt }

// Open connects to Redis.
func (r *RedisEvents) Open(eventbus.Handler, *zap.Logger) (Bus, error) { return nil, errBusNotBuilt }
