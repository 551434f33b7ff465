package tiered

import (
	"github.com/spark-edge/spark/internal/testredis"
)

// Short names for the shared Redis test helpers.
var (
	sharedRedis   = testredis.Shared
	uniquePrefix  = testredis.Prefix
	startRedis    = testredis.Start
	startCluster  = testredis.StartCluster
	waitClusterOK = testredis.WaitClusterOK
	clusterAddrs  = testredis.Addrs
)

type redisServer = testredis.Server
